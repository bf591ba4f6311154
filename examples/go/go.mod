module event-piper/examples/go

go 1.19
