// Package tools pins, as Go tool dependencies, the executables monokube's
// build compiles from upstream modules and embeds: runc (a separate program
// because containerd's shim execs it, and it needs cgo and libseccomp) and the
// CNI plugins (each is package main with no importable entry point). A module
// of its own keeps their dependencies out of the main module's graph.
package tools
