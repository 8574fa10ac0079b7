package main

import hdr "github.com/HdrHistogram/hdrhistogram-go"

type hdrHist = hdr.Histogram
