"""The configure step names the Debian package of each missing dependency.

Each case configures the source tree into a scratch directory with one
dependency hidden: a pkg-config wrapper that denies knowing one module, a
find path that skips wslay's headers, an llhttp source directory that does
not exist, or no pkg-config at all. Configure must fail, and its message
must name the package a user installs (`apt-get install <package>`).
"""

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

SOURCE_DIR = os.path.abspath(os.environ.get(
    "NC_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", "..")))
CMAKE = os.environ.get("NC_CMAKE", shutil.which("cmake") or "cmake")
PKG_CONFIG = shutil.which("pkg-config")

# A pkg-config that knows every module but one: the hidden module's name is
# in $NC_HIDE_MODULE. CMake asks with the module name as its own argument.
WRAPPER = """#!/bin/sh
for a in "$@"; do
  case "$a" in
    "$NC_HIDE_MODULE"|"$NC_HIDE_MODULE"[\\ \\<\\>=]*) exit 1 ;;
  esac
done
exec {real} "$@"
"""


class ConfigureTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if PKG_CONFIG is None:
            raise unittest.SkipTest("pkg-config is needed to hide one module")
        cls.tmp = tempfile.mkdtemp(prefix="nc-configure-")
        cls.wrapper = os.path.join(cls.tmp, "pkg-config")
        with open(cls.wrapper, "w") as f:
            f.write(WRAPPER.format(real=PKG_CONFIG))
        os.chmod(cls.wrapper, stat.S_IRWXU)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, True)

    def configure(self, *args, env=None):
        build = tempfile.mkdtemp(dir=self.tmp)
        p = subprocess.run([CMAKE, "-S", SOURCE_DIR, "-B", build] + list(args),
                           capture_output=True, text=True, timeout=120,
                           env=dict(os.environ, **(env or {})))
        # CMake wraps its messages; compare with the whitespace folded.
        return p.returncode, " ".join((p.stdout + p.stderr).split())

    def assertNames(self, package, *args, env=None):
        rc, out = self.configure(*args, env=env)
        self.assertNotEqual(rc, 0, "configure succeeded with %s missing" % package)
        self.assertIn("apt-get install %s" % package, out)

    def test_the_tree_configures_with_everything_present(self):
        # The control: the wrapper hides nothing, so the cases below fail
        # only for what they hide.
        rc, out = self.configure("-DPKG_CONFIG_EXECUTABLE=" + self.wrapper,
                                 env={"NC_HIDE_MODULE": "no-such-module"})
        self.assertEqual(rc, 0, out[-3000:])

    def test_each_pkg_config_module(self):
        for module, package in (("libuv", "libuv1-dev"),
                                ("lua5.4", "liblua5.4-dev"),
                                ("sqlite3", "libsqlite3-dev"),
                                ("libcrypto", "libssl-dev")):
            with self.subTest(module=module):
                self.assertNames(package, "-DPKG_CONFIG_EXECUTABLE=" + self.wrapper,
                                 env={"NC_HIDE_MODULE": module})

    def test_no_pkg_config(self):
        self.assertNames("pkg-config", "-DPKG_CONFIG_EXECUTABLE=/nonexistent/pkg-config")

    def test_wslay(self):
        self.assertNames("libwslay-dev", "-DCMAKE_IGNORE_PATH=/usr/include;/usr/local/include")

    def test_llhttp(self):
        self.assertNames("node-llhttp", "-DLLHTTP_SRC_DIR=/nonexistent/llhttp")

    def test_a_missing_test_tool_is_a_failing_test_not_a_configure_error(self):
        # `make run` installs no test tools, so configure must pass without
        # them; `ctest` must then fail, naming the package.
        build = tempfile.mkdtemp(dir=self.tmp)
        p = subprocess.run([CMAKE, "-S", SOURCE_DIR, "-B", build,
                            "-DNC_PYTHON=/nonexistent/python3"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr[-3000:])
        ctest = os.path.join(os.path.dirname(CMAKE), "ctest")
        p = subprocess.run([ctest, "-R", "^missing_python3$", "--output-on-failure"],
                           cwd=build, capture_output=True, text=True, timeout=120)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn("apt-get install python3", p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
