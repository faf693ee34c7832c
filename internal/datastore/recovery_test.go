package datastore

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestPanickingRequestFailsAloneWithInternal(t *testing.T) {
	info := &grpc.UnaryServerInfo{FullMethod: "/etcdserverpb.KV/Range"}
	_, err := recoverUnary(context.Background(), nil, info, func(context.Context, any) (any, error) {
		panic("driver bug")
	})
	if status.Code(err) != codes.Internal {
		t.Fatalf("err = %v, want codes.Internal", err)
	}
	resp, err := recoverUnary(context.Background(), nil, info, func(context.Context, any) (any, error) { return "ok", nil })
	if err != nil || resp != "ok" {
		t.Fatalf("a normal request = %v, %v", resp, err)
	}
	streamInfo := &grpc.StreamServerInfo{FullMethod: "/etcdserverpb.Watch/Watch"}
	if err := recoverStream(nil, nil, streamInfo, func(any, grpc.ServerStream) error { panic("watch bug") }); status.Code(err) != codes.Internal {
		t.Fatalf("stream err = %v, want codes.Internal", err)
	}
}
