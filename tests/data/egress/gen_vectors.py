#!/usr/bin/env python3
"""Independent computation of the expected values in tests/egress/test_sigv4.c and
test_azure_sign.c for the cases that have no published vector (keys with spaces and unicode,
multipart query strings, session tokens, generic double encoding, Azure Shared Key).

Written from the AWS SigV4 and Azure Shared Key specifications with hashlib/hmac only; it first
reproduces published AWS vectors to show it is right, then prints the new expectations. The C
tests compare against the printed strings, fixed in the source. Run: python3 gen_vectors.py
"""
import base64
import hashlib
import hmac
import urllib.parse


def enc(s, slash=True):
    safe = "-._~" + ("" if slash else "/")
    return urllib.parse.quote(s, safe=safe)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def hm(k, m):
    return hmac.new(k, m.encode(), hashlib.sha256).digest()


def sigv4(method, canon_path, query_pairs, headers, payload, amz_date, ak, sk, region, service):
    """query_pairs: decoded (name, value); headers: dict lowercase name -> value."""
    q = "&".join(f"{k}={v}" for k, v in sorted((enc(k), enc(v)) for k, v in query_pairs))
    names = sorted(headers)
    creq = "\n".join([method, canon_path, q, "".join(f"{n}:{headers[n]}\n" for n in names),
                      ";".join(names), payload])
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    sts = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, sha(creq.encode())])
    k = hm(("AWS4" + sk).encode(), amz_date[:8])
    k = hm(k, region)
    k = hm(k, service)
    k = hm(k, "aws4_request")
    sig = hmac.new(k, sts.encode(), hashlib.sha256).hexdigest()
    return creq, sts, sig, q, ";".join(names)


SIGS = {}


def show(name, r):
    creq, sts, sig, q, sh = r
    SIGS[name] = sig
    print(f"== {name}\n-- canonical request\n{creq}\n-- string to sign\n{sts}\n-- signature {sig}\n")


S3AK, S3SK = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
D13 = "20130524T000000Z"
EMPTY = sha(b"")
HOST = "examplebucket.s3.amazonaws.com"

# Self-check against the S3 documentation's published signatures.
r = sigv4("GET", "/test.txt", [], {"host": HOST, "range": "bytes=0-9", "x-amz-content-sha256": EMPTY,
          "x-amz-date": D13}, EMPTY, D13, S3AK, S3SK, "us-east-1", "s3")
assert r[2] == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41", r[2]
r = sigv4("GET", "/", [("max-keys", "2"), ("prefix", "J")], {"host": HOST,
          "x-amz-content-sha256": EMPTY, "x-amz-date": D13}, EMPTY, D13, S3AK, S3SK, "us-east-1", "s3")
assert r[2] == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7", r[2]
cred = f"{S3AK}/20130524/us-east-1/s3/aws4_request"
r = sigv4("GET", "/test.txt", [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"), ("X-Amz-Credential", cred),
          ("X-Amz-Date", D13), ("X-Amz-Expires", "86400"), ("X-Amz-SignedHeaders", "host")],
          {"host": HOST}, "UNSIGNED-PAYLOAD", D13, S3AK, S3SK, "us-east-1", "s3")
assert r[2] == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", r[2]

# --- New S3 cases (2026-11-22T01:02:03Z, region eu-west-1). ---
D26 = "20261122T010203Z"
TOKEN = "FwoGZXIvYXdzEJr//////////wEaDK+tok/en=="
key = "/vigil-dumps/host-1/my key ü+é.core"
show("s3-put-unicode-key-unsigned-payload",
     sigv4("PUT", enc(key, slash=False), [], {"host": "s3.eu-west-1.amazonaws.com",
           "x-amz-content-sha256": "UNSIGNED-PAYLOAD", "x-amz-date": D26,
           "content-type": "application/octet-stream", "content-length": "1048576"},
           "UNSIGNED-PAYLOAD", D26, S3AK, S3SK, "eu-west-1", "s3"))
print("wire path:", enc(key, slash=False), "\n")

upload_id = "2~iCw/Ahv+Bo4=x y"
show("s3-upload-part-query-session-token",
     sigv4("PUT", enc("/vigil-dumps/big file.core", slash=False),
           [("partNumber", "1"), ("uploadId", upload_id)],
           {"host": "s3.eu-west-1.amazonaws.com", "x-amz-content-sha256": sha(b"part-1 bytes"),
            "x-amz-date": D26, "x-amz-security-token": TOKEN},
           sha(b"part-1 bytes"), D26, S3AK, S3SK, "eu-west-1", "s3"))
print("payload sha:", sha(b"part-1 bytes"), "\n")

show("s3-create-multipart-uploads",
     sigv4("POST", "/vigil-dumps/a.core", [("uploads", "")],
           {"host": "127.0.0.1:4569", "x-amz-content-sha256": EMPTY, "x-amz-date": D26},
           EMPTY, D26, S3AK, S3SK, "us-east-1", "s3"))

pkey = "/vigil-dumps/dump 2026 ü.core"
pcred = f"{S3AK}/20261122/eu-west-1/s3/aws4_request"
r = sigv4("GET", enc(pkey, slash=False), [("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
          ("X-Amz-Credential", pcred), ("X-Amz-Date", D26), ("X-Amz-Expires", "3600"),
          ("X-Amz-Security-Token", TOKEN), ("X-Amz-SignedHeaders", "host"),
          ("response-content-disposition", "attachment; filename=\"dump.core\"")],
          {"host": "s3.eu-west-1.amazonaws.com"}, "UNSIGNED-PAYLOAD", D26, S3AK, S3SK,
          "eu-west-1", "s3")
show("s3-presign-token-unicode", r)
print("url: https://s3.eu-west-1.amazonaws.com" + enc(pkey, slash=False) + "?" + r[3] +
      "&X-Amz-Signature=" + r[2] + "\n")

# Generic service, raw path with a space: wire "/example%20space/", canonical encodes again.
SAK, SSK = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
D15 = "20150830T123600Z"
show("generic-double-encoding",
     sigv4("GET", enc(enc("/example space/ü/", slash=False), slash=False), [],
           {"host": "example.amazonaws.com", "x-amz-date": D15}, EMPTY, D15, SAK, SSK,
           "us-east-1", "service"))

# --- Azure Shared Key ---
AZ_ACCOUNT = "devstoreaccount1"
AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azure(method, path, query, headers):
    h = {k.lower(): v for k, v in headers.items()}
    std = ["content-encoding", "content-language", "content-length", "content-md5",
           "content-type", "date", "if-modified-since", "if-match", "if-none-match",
           "if-unmodified-since", "range"]
    vals = [h.get(n, "") for n in std]
    if vals[2] == "0":
        vals[2] = ""
    ch = "".join(f"{n}:{h[n].strip()}\n" for n in sorted(k for k in h if k.startswith("x-ms-")))
    res = f"/{AZ_ACCOUNT}{path}"
    params = {}
    for k, v in urllib.parse.parse_qsl(query or "", keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        res += f"\n{k}:{','.join(sorted(params[k]))}"
    sts = method + "\n" + "\n".join(vals) + "\n" + ch + res
    sig = base64.b64encode(hmac.new(base64.b64decode(AZ_KEY), sts.encode(),
                                    hashlib.sha256).digest()).decode()
    return sts, f"SharedKey {AZ_ACCOUNT}:{sig}"


for name, args in [
    ("azure-create-container", ("PUT", "/devstoreaccount1/vigil", "restype=container",
                                {"x-ms-date": "Sun, 22 Nov 2026 01:02:03 GMT",
                                 "x-ms-version": "2021-08-06", "Content-Length": "0"})),
    ("azure-put-block", ("PUT", "/devstoreaccount1/vigil/dumps/my%20key%20%C3%BC.core",
                         "comp=block&blockid=YmxvY2stMDAwMDE%3D",
                         {"x-ms-date": "Sun, 22 Nov 2026 01:02:03 GMT",
                          "x-ms-version": "2021-08-06", "Content-Length": "4096",
                          "Content-Type": "application/octet-stream",
                          "x-ms-meta-Host": "  web-1 ", "X-MS-Client-Request-Id": "r1"})),
    ("azure-list-multi", ("GET", "/devstoreaccount1/vigil", "restype=container&comp=list&"
                          "include=metadata&include=snapshots&Prefix=dumps%2F",
                          {"x-ms-date": "Sun, 22 Nov 2026 01:02:03 GMT",
                           "x-ms-version": "2021-08-06", "Range": "bytes=0-99"})),
]:
    sts, auth = azure(*args)
    print(f"== {name}\n-- string to sign\n{sts}\n-- {auth}\n")

# --- Optional second opinion: botocore (AWS's own signer), when installed. ---
try:
    import datetime
    from unittest import mock
    from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth, SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials
except ImportError:
    print("botocore not installed: skipping the botocore cross-check")
    raise SystemExit(0)


def pinned(when):
    class Pinned(datetime.datetime):
        @classmethod
        def utcnow(cls):
            return when

        @classmethod
        def now(cls, tz=None):
            return when.replace(tzinfo=tz) if tz else when
    return mock.patch("botocore.auth.datetime.datetime", Pinned)


def auth_sig(req):
    return req.headers["Authorization"].split("Signature=")[1]


def agree(name, sig):
    assert SIGS[name] == sig, f"botocore disagrees on {name}: {sig} != {SIGS[name]}"
    print("botocore agrees:", name)


with pinned(datetime.datetime(2026, 11, 22, 1, 2, 3)):
    r = AWSRequest(method="PUT", url="https://s3.eu-west-1.amazonaws.com" + enc(key, slash=False),
                   headers={"Content-Type": "application/octet-stream",
                            "Content-Length": "1048576"}, data=b"")
    r.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    S3SigV4Auth(Credentials(S3AK, S3SK), "s3", "eu-west-1").add_auth(r)
    agree("s3-put-unicode-key-unsigned-payload", auth_sig(r))
    r = AWSRequest(method="PUT", url="https://s3.eu-west-1.amazonaws.com/vigil-dumps/big%20file.core"
                   "?uploadId=" + enc(upload_id) + "&partNumber=1", data=b"part-1 bytes")
    S3SigV4Auth(Credentials(S3AK, S3SK, TOKEN), "s3", "eu-west-1").add_auth(r)
    agree("s3-upload-part-query-session-token", auth_sig(r))
    r = AWSRequest(method="POST", url="http://127.0.0.1:4569/vigil-dumps/a.core?uploads", data=b"")
    S3SigV4Auth(Credentials(S3AK, S3SK), "s3", "us-east-1").add_auth(r)
    agree("s3-create-multipart-uploads", auth_sig(r))
    r = AWSRequest(method="GET", url="https://s3.eu-west-1.amazonaws.com" + enc(pkey, slash=False) +
                   "?response-content-disposition=" + enc('attachment; filename="dump.core"'))
    S3SigV4QueryAuth(Credentials(S3AK, S3SK, TOKEN), "s3", "eu-west-1", expires=3600).add_auth(r)
    agree("s3-presign-token-unicode", r.url.split("X-Amz-Signature=")[1])
with pinned(datetime.datetime(2015, 8, 30, 12, 36, 0)):
    r = AWSRequest(method="GET", url="https://example.amazonaws.com/example%20space/%C3%BC/", data=b"")
    SigV4Auth(Credentials(SAK, SSK), "service", "us-east-1").add_auth(r)
    agree("generic-double-encoding", auth_sig(r))
