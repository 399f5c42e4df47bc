"""Captures real ClientHellos: listen on loopback, let a client connect, save what it sends.

Run in this directory: python3 capture.py (needs openssl on PATH). See README.md."""
import socket, sys, subprocess, time, threading
def capture(cmd_fn, out):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0)); s.listen(1); port = s.getsockname()[1]
    t = threading.Thread(target=cmd_fn, args=(port,)); t.start()
    c, _ = s.accept(); c.settimeout(1.0); data = b""
    try:
        while True:
            d = c.recv(65536)
            if not d: break
            data += d
    except socket.timeout: pass
    c.close(); s.close(); t.join()
    open(out, "wb").write(data); print(out, len(data))
def openssl(args):
    def run(port):
        subprocess.run(["timeout", "3", "openssl", "s_client", "-connect", f"127.0.0.1:{port}"] + args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return run
def pyssl(sni, alpn):
    def run(port):
        import ssl
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        if alpn: ctx.set_alpn_protocols(alpn)
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(1.5)
        try: ctx.wrap_socket(sock, server_hostname=sni)
        except Exception: pass
        sock.close()
    return run
capture(openssl(["-servername", "shop.example.com", "-tls1_2"]), "openssl-tls12-sni.bin")
capture(openssl(["-servername", "legacy.example.net", "-tls1", "-cipher", "DEFAULT@SECLEVEL=0"]), "openssl-tls10-sni.bin")
capture(openssl(["-servername", "Shop.Example.COM.", "-tls1_3", "-alpn", "h2,http/1.1"]), "openssl-tls13-alpn.bin")
capture(openssl(["-noservername", "-tls1_2"]), "openssl-tls12-nosni.bin")
capture(pyssl("api.example.org", ["h2", "http/1.1"]), "python-tls13-alpn.bin")
