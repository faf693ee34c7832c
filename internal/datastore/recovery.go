package datastore

import (
	"context"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"k8s.io/klog/v2"
)

// grpc-go does not recover panics in handlers: a bug in kine or its SQL
// driver during one request would end the whole process
// (internal/component/fatal-exits.md D4). These interceptors fail only
// that request, with codes.Internal, which the API server retries. Panics
// in goroutines a handler starts itself (kine's watch fan-out) are not
// covered.

func recoverUnary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer recovered(info.FullMethod, &err)
	return handler(ctx, req)
}

func recoverStream(srv any, stream grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer recovered(info.FullMethod, &err)
	return handler(srv, stream)
}

func recovered(method string, err *error) {
	if r := recover(); r != nil {
		klog.ErrorS(nil, "Datastore request panicked; failing only this request", "method", method, "panic", r, "stack", string(debug.Stack()))
		*err = status.Errorf(codes.Internal, "datastore panicked in %s: %v", method, r)
	}
}
