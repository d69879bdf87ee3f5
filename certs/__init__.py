"""Certificates: CA and serving-certificate generation, hot-reloadable TLS contexts."""
