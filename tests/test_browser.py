"""The mission, end to end in a real browser: a backend mints a token over REST; the broker's web
page, loaded in Debian's headless chromium, connects with MQTT.js over WebSockets using the token,
subscribes to '#', and shows only the readings the token's ACL allows, published by a telemetry
service. A screenshot is kept in the build tree (tests/browser.png) as an artifact."""
import json
import os
import shutil
import subprocess
import time
import unittest

from broker import Broker, BrokerTest
from mqtt_raw import RawClient

HERE = os.path.dirname(os.path.abspath(__file__))
ARTIFACT = os.environ.get("RINGMQ_ARTIFACTS", HERE)


class BrowserPage(unittest.TestCase):
    def setUp(self):
        if shutil.which("node") is None or not os.path.isdir(
                os.path.join(HERE, "js", "node_modules", "playwright-core")):
            self.skipTest("node or playwright-core missing (tools/setup.sh installs them)")
        if not os.path.exists(os.environ.get("CHROMIUM", "/usr/bin/chromium")):
            self.skipTest("Debian's chromium is not installed (tools/setup.sh installs it)")
        self.broker = Broker("--listen", "ws://127.0.0.1:0/mqtt")

    def tearDown(self):
        self.assertEqual(self.broker.stop(), 0)

    def test_page_shows_only_what_the_token_allows(self):
        status, reply = self.broker.rest("POST", "/platform/tokens", {
            "info": "browser user u1", "ttl": 600,
            "access": {"type": 2, "acl": [{"uri": "mqtt", "topic": "data/u1/#",
                                           "actions": ["subscribe"]}]}})
        self.assertEqual(status, 200, reply)
        key = reply["result"][0]["key"]
        host, port, path = self.broker.listeners["ws"]
        shot = os.path.join(ARTIFACT, "browser.png")
        page = subprocess.Popen(
            ["node", os.path.join(HERE, "js", "page_test.mjs"),
             "--page", "http://127.0.0.1:%d/" % self.broker.rest_port,
             "--ws", "ws://%s:%d%s" % (host, port, path), "--token", key, "--subscribe", "#",
             "--expect", "21.5", "--screenshot", shot],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The telemetry service publishes a reading every 0.3 s until the page has shown one.
        tele = RawClient(self.broker).connect("telemetry")
        deadline = time.time() + 30
        while page.poll() is None and time.time() < deadline:
            tele.publish("data/u2/temp", b"19.0")  # another user's reading: never shown
            tele.publish("data/u1/temp", b"21.5")
            time.sleep(0.3)
        out, err = page.communicate(timeout=30)
        if page.returncode == 77:
            self.skipTest("chromium missing")
        self.assertEqual(page.returncode, 0, out + err + "".join(self.broker.lines[-20:]))
        rows = json.loads(out.strip().splitlines()[-1])["rows"]
        self.assertTrue(any("data/u1/temp" in r and "21.5" in r for r in rows), rows)
        self.assertFalse(any("data/u2" in r for r in rows), rows)
        self.assertTrue(os.path.getsize(shot) > 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
