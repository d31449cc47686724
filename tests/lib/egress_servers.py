"""The Azurite and s3rver of the egress_servers fixture (tests/egress/servers.sh, ports in
BUILD/egress-servers/ports.env), for tests that send artifacts there: an Egress section with one
provider of each ("s3", "azure") under a prefix of the test's own, and the stored objects listed
and read back. Standard library only; raises vigil_test.Skip without the fixture."""
import json
import os
import re
import sys
import urllib.parse
import urllib.request

from vigil_test import Skip

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "egress"))
import azhelper  # noqa: E402


class Servers:
    def __init__(self, build):
        ports = {}
        try:
            with open(os.path.join(build, "egress-servers", "ports.env")) as f:
                for line in f:
                    k, _, v = line.strip().partition("=")
                    ports[k] = v
        except OSError:
            raise Skip("no egress servers (the egress_servers fixture)")
        self.s3 = f"http://127.0.0.1:{ports['S3_PORT']}"
        self.az = f"http://127.0.0.1:{ports['AZ_PORT']}/devstoreaccount1"
        self.sas = azhelper.account_sas()

    def egress(self, prefix):
        """The Egress section: providers "s3" and "azure", objects under prefix."""
        return {
            "Properties": {"AzKey": azhelper.KEY},
            "S3Storage": {"s3": {"Endpoint": self.s3, "BucketName": "vigil",
                                 "RegionName": "us-east-1", "AccessKeyId": "S3RVER",
                                 "SecretAccessKey": "S3RVER", "ForcePathStyle": True,
                                 "KeyPrefix": prefix}},
            "AzureBlobStorage": {"azure": {"AccountUri": self.az, "ContainerName": "vigil",
                                           "BlobPrefix": prefix, "AccountKeyName": "AzKey"}},
        }

    @staticmethod
    def _get(url):
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.read()

    def s3_keys(self, prefix):
        xml = self._get(f"{self.s3}/vigil?prefix={urllib.parse.quote(prefix)}").decode()
        return re.findall(r"<Key>([^<]+)</Key>", xml)

    def s3_get(self, key):
        return self._get(f"{self.s3}/vigil/{urllib.parse.quote(key)}")

    def s3_fetch(self, key, path):
        with open(path, "wb") as f:
            f.write(self.s3_get(key))

    def az_names(self, prefix):
        xml = self._get(f"{self.az}/vigil?restype=container&comp=list&"
                        f"prefix={urllib.parse.quote(prefix)}&{self.sas}").decode()
        return re.findall(r"<Name>([^<]+)</Name>", xml)

    def az_fetch(self, name):
        return self._get(f"{self.az}/vigil/{urllib.parse.quote(name)}?{self.sas}")

    def names(self, provider, prefix):
        """The objects under prefix in provider ("s3" or "azure")."""
        return self.s3_keys(prefix) if provider == "s3" else self.az_names(prefix)

    def json(self, provider, name):
        """An object of provider, parsed as JSON."""
        return json.loads(self.s3_get(name) if provider == "s3" else self.az_fetch(name))
