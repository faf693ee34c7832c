package cli

import (
	"net/http"
	"net/http/pprof"
	"os"

	"k8s.io/klog/v2"
)

// pprofAddressEnv names a local address ("127.0.0.1:6060") on which a
// server or worker serves Go's profiles, for finding where start-up time
// and memory go. Unset, nothing listens: upstream's own profiling
// endpoints stay off (CIS 1.2.15, 1.3.2, 1.4.1).
const pprofAddressEnv = "MONOKUBE_PPROF_ADDRESS"

func servePprof() {
	address := os.Getenv(pprofAddressEnv)
	if address == "" {
		return
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	go func() {
		klog.InfoS("Serving Go profiles", "address", address)
		if err := http.ListenAndServe(address, mux); err != nil {
			klog.ErrorS(err, "Go profiles not served", "address", address)
		}
	}()
}
