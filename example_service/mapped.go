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

// decodeInScratch maps mb MiB between two guard pages, writes every page of it (so it is resident) and
// returns the whole mapping, guards included, for Munmap. The guards (PROT_NONE) also keep the kernel from
// merging the region with a mapping the Go runtime makes beside it: /proc/PID/maps shows it at its size.
func decodeInScratch(mb int) ([]byte, error) {
	const guard = 4096
	mapping, err := syscall.Mmap(-1, 0, mb<<20+2*guard, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		return nil, err
	}
	for _, page := range [][]byte{mapping[:guard], mapping[len(mapping)-guard:]} {
		if err := syscall.Mprotect(page, syscall.PROT_NONE); err != nil {
			syscall.Munmap(mapping)
			return nil, err
		}
	}
	region := mapping[guard : len(mapping)-guard]
	for i := 0; i < len(region); i += 4096 {
		region[i] = byte(i)
	}
	return mapping, nil
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
		mapping, err := decodeInScratch(mb)
		if err != nil {
			return "", err
		}
		decodeScratch.Lock()
		decodeScratch.regions = append(decodeScratch.regions, mapping)
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
		mapping, err := decodeInScratch(mb)
		if err != nil {
			return "", err
		}
		if err := syscall.Munmap(mapping); err != nil {
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
