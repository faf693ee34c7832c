package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

// criMaxMessage is the kubelet's own limit for CRI messages: a node with
// many images answers ListImages with more than gRPC's default 4 MiB.
const criMaxMessage = 16 << 20

// imageGate is the CRI image service the kubelet talks to. It is
// containerd's, except for pulls the start's own imports can answer. The
// kubelet starts as soon as the pause image is in, while the larger bundled
// images (CoreDNS, metrics-server) and the archives in <data-dir>/images/
// may still be importing; a pod needing one of them then would send its
// pull to a registry (monokube.io serves none; an air-gapped site has none)
// and wait out ImagePullBackOff. The gate holds such a pull until the
// import ends and answers it with the imported image. A pull of a bundled
// image is always answered from the node, so imagePullPolicy: Always works
// for them without a registry too.
type imageGate struct {
	runtimeapi.UnimplementedImageServiceServer
	backend runtimeapi.ImageServiceClient
	imports *startImports
}

// serveImageGate listens on socket and serves the gate in front of the
// containerd CRI image service at containerdSocket. The returned stop ends
// the server and its connection to containerd.
func serveImageGate(socket, containerdSocket string, imports *startImports) (stop func(), err error) {
	conn, err := grpc.NewClient("unix://"+containerdSocket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(criMaxMessage), grpc.MaxCallSendMsgSize(criMaxMessage)))
	if err != nil {
		return nil, fmt.Errorf("connect to containerd's image service: %w", err)
	}
	if err := os.Remove(socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		conn.Close()
		return nil, fmt.Errorf("remove stale image service socket: %w", err)
	}
	listener, err := net.Listen("unix", socket)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("image service socket: %w", err)
	}
	server := grpc.NewServer(grpc.MaxRecvMsgSize(criMaxMessage), grpc.MaxSendMsgSize(criMaxMessage))
	runtimeapi.RegisterImageServiceServer(server, &imageGate{backend: runtimeapi.NewImageServiceClient(conn), imports: imports})
	go func() { _ = server.Serve(listener) }()
	return func() {
		server.Stop()
		conn.Close()
	}, nil
}

func (g *imageGate) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	held, waited, err := g.holdForImport(ctx, req.GetImage())
	if err != nil {
		return nil, err
	}
	if held {
		if id := g.localImage(ctx, req.GetImage()); id != "" {
			if waited > 0 {
				klog.InfoS("Pull answered by this start's image import", "image", ref, "waited", waited.Round(time.Millisecond))
			}
			return &runtimeapi.PullImageResponse{ImageRef: id}, nil
		}
		// A bundled image whose import failed or was removed, or one no
		// archive held: containerd's pull says what is wrong.
		if waited > 0 {
			klog.InfoS("Pull goes to the registry: no archive of this start's import held the image", "image", ref, "waited", waited.Round(time.Millisecond))
		}
	}
	return g.backend.PullImage(ctx, req)
}

// holdForImport waits for the import that may give the image spec names:
// a bundled image's own, or, for an image the node lacks while the
// archives still import, theirs. An image the node had already is pulled
// as asked (imagePullPolicy: Always), so it is not held.
func (g *imageGate) holdForImport(ctx context.Context, spec *runtimeapi.ImageSpec) (held bool, waited time.Duration, err error) {
	ref := spec.GetImage()
	switch {
	case g.imports.isBundled(ref):
		waited, err = g.imports.waitBundled(ctx, ref)
		return true, waited, err
	case g.imports.archivesRunning() && g.localImage(ctx, spec) == "":
		waited, err = g.imports.waitArchives(ctx)
		return true, waited, err
	}
	return false, 0, nil
}

// localImage is the ID of the image spec names if containerd has it.
func (g *imageGate) localImage(ctx context.Context, spec *runtimeapi.ImageSpec) string {
	status, err := g.backend.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil {
		return ""
	}
	return status.GetImage().GetId()
}

func (g *imageGate) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	return g.backend.ListImages(ctx, req)
}

func (g *imageGate) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	return g.backend.ImageStatus(ctx, req)
}

func (g *imageGate) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	return g.backend.RemoveImage(ctx, req)
}

func (g *imageGate) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return g.backend.ImageFsInfo(ctx, req)
}

func (g *imageGate) StreamImages(req *runtimeapi.StreamImagesRequest, stream grpc.ServerStreamingServer[runtimeapi.StreamImagesResponse]) error {
	upstream, err := g.backend.StreamImages(stream.Context(), req)
	if err != nil {
		return err
	}
	for {
		resp, err := upstream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
}
