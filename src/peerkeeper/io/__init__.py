"""IO: sockets (SockMan), proxies, DNS, the SQLite store and every file format."""
