module example.com/goleak/goapps

go 1.22
