package node

import (
	"context"
	"time"

	criclient "k8s.io/cri-client/pkg"
)

// criAnswers reports whether the CRI runtime service on socket answers Version.
func criAnswers(ctx context.Context, socket string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	service, err := criclient.NewRemoteRuntimeService(ctx, "unix://"+socket, time.Second, nil, false)
	if err != nil {
		return false
	}
	defer service.Close(context.WithoutCancel(ctx))
	_, err = service.Version(ctx, "")
	return err == nil
}
