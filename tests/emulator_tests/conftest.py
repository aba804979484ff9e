import requests
import pytest

V = "2014-10-01"


class Api:
    """Raw HTTP access to the emulator, as a client of the real service would see it."""

    def __init__(self, emu):
        self.emu = emu
        self.session = requests.Session()

    def __call__(self, method, path, cert="registered", version=V, subscription=None, headers=None, **kw):
        certs = {"registered": self.emu.info["certificate_path"],
                 "unregistered": self.emu.info["unregistered_certificate_path"], None: None}
        hdrs = dict(headers or {})
        if version:
            hdrs["x-ms-version"] = version
        url = "%s/%s%s" % (self.emu.url, subscription or self.emu.subscription_id, path)
        return self.session.request(method, url, cert=certs[cert], verify=self.emu.info["ca_path"],
                                    headers=hdrs, timeout=30, allow_redirects=False, **kw)

    def reimage(self, instance="WebRole1_IN_0", addressing="deploymentslots/production", comp="reimage",
                headers=None, **kw):
        return self("POST", "/services/hostedservices/contoso-web/%s/roleinstances/%s?comp=%s"
                    % (addressing, instance, comp), headers=dict({"Content-Length": "0"}, **(headers or {})), **kw)


@pytest.fixture
def api(emulator):
    return Api(emulator)
