#!/usr/bin/env bash
echo "coverage reports are not available in Tongka's offline build" >&2
exit 1
