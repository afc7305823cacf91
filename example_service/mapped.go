package main

// ---- GET /leaky/mmap, /fixed/mmap: memory outside the Go heap ----
//
// A decoder that maps a scratch region with syscall.Mmap for each image it
// decodes. The leaky twin keeps the mapping in a registry nobody evicts; the
// Go heap never sees it, only the process's resident memory grows. The fixed
// twin unmaps it when the decode is done.

import (
	"fmt"
	"net/http"
	"sync"
	"syscall"
)

var decodeScratch struct {
	sync.Mutex
	regions [][]byte // mapped regions the leaky decoder forgot to unmap
}

// decodeInScratch maps mb MiB, writes every page (so it is resident) and returns the region.
func decodeInScratch(mb int) ([]byte, error) {
	region, err := syscall.Mmap(-1, 0, mb<<20, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	for i := 0; i < len(region); i += 4096 {
		region[i] = byte(i)
	}
	return region, nil
}

// mmapParam is the region size in MiB, kept within 1 GiB for the n regions of one request.
func mmapParam(r *http.Request, n int) (int, error) {
	mb, err := intParam(r, "mb", 16, 1, 256)
	if err != nil {
		return 0, badRequest{err}
	}
	if n*mb > 1024 {
		return 0, badRequest{fmt.Errorf("n*mb must stay within 1 GiB")}
	}
	return mb, nil
}

func mmapLeaky(r *http.Request, n int) (string, error) {
	mb, err := mmapParam(r, n)
	if err != nil {
		return "", err
	}
	for range n {
		region, err := decodeInScratch(mb)
		if err != nil {
			return "", err
		}
		decodeScratch.Lock()
		decodeScratch.regions = append(decodeScratch.regions, region)
		decodeScratch.Unlock()
	}
	return fmt.Sprintf("decoded %d images in %d MiB scratch regions; the regions stay mapped", n, mb), nil
}

func mmapFixed(r *http.Request, n int) (string, error) {
	mb, err := mmapParam(r, n)
	if err != nil {
		return "", err
	}
	for range n {
		region, err := decodeInScratch(mb)
		if err != nil {
			return "", err
		}
		if err := syscall.Munmap(region); err != nil {
			return "", err
		}
	}
	return fmt.Sprintf("decoded %d images in %d MiB scratch regions, each unmapped", n, mb), nil
}

// ---- GET /admin/garbage: large written Go garbage, dropped at once ----

// handleGarbage allocates mb MiB on the Go heap, writes it and drops it: RSS
// rises, but nothing leaks, on or off the heap.
func handleGarbage(w http.ResponseWriter, r *http.Request) {
	mb, err := intParam(r, "mb", 64, 1, 1024)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	sum := 0
	for range mb {
		chunk := make([]byte, 1<<20)
		for i := range chunk {
			chunk[i] = byte(i)
		}
		sum += int(chunk[len(chunk)-1])
	}
	writeJSON(w, http.StatusOK, map[string]any{"garbage_mb": mb, "checksum": sum})
}
