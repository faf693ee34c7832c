// Command etcd is upstream etcd's own entry point, built from the pinned
// module for the conformance suite's etcd image (the sample API server test
// runs one beside its server); nothing of monokube runs it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
