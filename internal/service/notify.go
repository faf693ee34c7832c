package service

import (
	"net"
	"os"

	"k8s.io/klog/v2"
)

// NotifyReady tells systemd the service is up (sd_notify READY=1) when it
// started us with Type=notify; elsewhere it does nothing.
func NotifyReady() {
	socket := os.Getenv("NOTIFY_SOCKET")
	if socket == "" {
		return
	}
	if socket[0] == '@' {
		socket = "\x00" + socket[1:] // an abstract socket
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		klog.ErrorS(err, "Could not tell systemd the service is ready")
		return
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("READY=1")); err != nil {
		klog.ErrorS(err, "Could not tell systemd the service is ready")
	}
}
