package service

import (
	"net"
	"os"

	"k8s.io/klog/v2"
)

// notifySocket is systemd's notification socket when it started us with
// Type=notify, taken out of the environment by TakeNotifySocket.
var notifySocket string

// TakeNotifySocket moves NOTIFY_SOCKET from the environment to this
// package, before any component starts. The kube-apiserver we embed tells
// systemd READY=1 as soon as its post-start hooks begin (and then clears
// the variable), and the kubelet does once it runs: either made the unit
// active long before the node was ready, and left NotifyReady nothing to
// say. Only NotifyReady speaks for the process now.
func TakeNotifySocket() {
	notifySocket = os.Getenv("NOTIFY_SOCKET")
	_ = os.Unsetenv("NOTIFY_SOCKET")
}

// NotifyReady tells systemd the service is up (sd_notify READY=1) when it
// started us with Type=notify; elsewhere it does nothing.
func NotifyReady() {
	socket := notifySocket
	if socket == "" {
		return
	}
	// klog buffers for up to 5 s: the ready line goes to the journal
	// before `systemctl start` returns to whoever waits for it.
	klog.Flush()
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
