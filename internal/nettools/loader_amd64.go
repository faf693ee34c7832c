package nettools

// loader is the dynamic loader in lib/, as Debian's libc6 names it.
const loader = "ld-linux-x86-64.so.2"
