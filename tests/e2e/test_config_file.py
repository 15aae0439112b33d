"""The --config file: every key the README documents is accepted, and a key
nobody reads (a misspelling) stops the start with exit 2 and one line
naming it, instead of leaving its setting at the default unnoticed.
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

from ncfixture import (BINARY, SCRIPTS_DIR, SLOW, SOURCE_DIR, Server,
                       require_binary, write_config)

# A row of one of the README's key tables: | `key` | default | meaning |
README_ROW = re.compile(r"^\| `([a-z_0-9]+)` \| `?([^|`]+?)`? \|", re.M)


def documented_keys():
    """key -> default text, from the README's limit and policy tables."""
    with open(os.path.join(SOURCE_DIR, "README.md"), encoding="utf-8") as f:
        text = f.read()
    return {key: default.strip() for key, default in README_ROW.findall(text)
            if not key.startswith("-")}


class ConfigFileTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        require_binary()

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="nc-e2e-config-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def run_to_exit(self, config):
        path = os.path.join(self.tmp, "config.lua")
        write_config(path, config)
        db = os.path.join(self.tmp, "nc.db")
        p = subprocess.run([BINARY, "--listen", "127.0.0.1:0", "--db", db,
                            "--scripts", SCRIPTS_DIR, "--config", path],
                           stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=20 * SLOW, cwd=self.tmp)
        return p.returncode, p.stderr.decode("utf-8", "replace"), db

    def test_misspelt_key_stops_the_start(self):
        for key in ("max_conections", "channel_lifetime_maximum",
                    "subscription_duraton_max"):
            rc, err, db = self.run_to_exit({key: 5})
            lines = [l for l in err.splitlines() if l.strip()]
            self.assertEqual(rc, 2, "%s: exit %d, stderr %r" % (key, rc, err))
            self.assertEqual(len(lines), 1, err)
            self.assertIn('unknown key "%s"' % key, lines[0])
            self.assertFalse(os.path.exists(db), "a refused start created the db")

    def test_every_documented_key_is_accepted(self):
        keys = documented_keys()
        # The README documents at least the limits and both policy tables.
        for key in ("max_header_bytes", "channel_lifetime_max",
                    "subscription_duration_max", "db_cache_kib"):
            self.assertIn(key, keys)
        config = {}
        for key, default in keys.items():
            self.assertRegex(default, r"^\d+$", "%s: default %r" % (key, default))
            config[key] = int(default)
        server = Server(config=config).start()
        try:
            self.assertEqual(server.get("/health").status, 200)
        finally:
            server.stop()


if __name__ == "__main__":
    unittest.main()
