// Package proccpu reads the CPU time the process has used, for the example
// programs that report it beside their timings (examples/restart,
// etcdapi/examples/grpcbench).
package proccpu
