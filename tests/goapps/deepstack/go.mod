module example.com/goleak/goapps/deepstack

// Old enough for the Go 1.19-1.22 toolchains whose goroutine profile keeps only 32 frames.
go 1.19
