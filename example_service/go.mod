module example.com/goleak/example_service

go 1.22
