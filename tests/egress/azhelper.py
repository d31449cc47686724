#!/usr/bin/env python3
"""Azurite helpers for the egress tests: an account SAS for devstoreaccount1 (the emulator's
well-known account), container creation, and SAS URLs for reading blobs back with curl.
  azhelper.py sas [PERMS [TYPES]]    -> prints the SAS query (no '?'); TYPES: resource types
                                        (default sco; o alone cannot create containers)
  azhelper.py mkcontainer URI NAME   -> creates the container (idempotent)
"""
import base64, hashlib, hmac, sys, urllib.parse, urllib.request, urllib.error

ACCOUNT = "devstoreaccount1"
# Azurite's published development key (not a secret).
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
VERSION = "2021-08-06"


def account_sas(perms="rwdlacu", types="sco", expiry="2035-01-01T00:00:00Z"):
    sts = "\n".join([ACCOUNT, perms, "b", types, "", expiry, "", "https,http", VERSION, "", ""])
    sig = base64.b64encode(hmac.new(base64.b64decode(KEY), sts.encode(), hashlib.sha256).digest())
    q = {"sv": VERSION, "ss": "b", "srt": types, "sp": perms, "se": expiry, "spr": "https,http",
         "sig": sig.decode()}
    return urllib.parse.urlencode(q)


def main():
    cmd = sys.argv[1]
    if cmd == "sas":
        print(account_sas(*(sys.argv[2:4])))
    elif cmd == "mkcontainer":
        uri, name = sys.argv[2], sys.argv[3]
        req = urllib.request.Request(f"{uri}/{name}?restype=container&{account_sas()}",
                                     method="PUT", headers={"x-ms-version": VERSION})
        try:
            urllib.request.urlopen(req).read()
        except urllib.error.HTTPError as e:
            if e.code != 409:
                raise
    else:
        sys.exit("unknown command")


if __name__ == "__main__":
    main()
