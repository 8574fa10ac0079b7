//go:build unix

package store

import "syscall"

// freeBytes reports the bytes available to an unprivileged user on the file
// system holding dir. It is the one place the stores measure free space.
func freeBytes(dir string) (uint64, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, err
	}
	return uint64(s.Bavail) * uint64(s.Bsize), nil
}
