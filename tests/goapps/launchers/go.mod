module example.com/goleak/goapps/launchers

// WaitGroup.Go is new in Go 1.25.
go 1.25
