vcl 4.1;
#
# Varnish in front of a cachegrain application, purging by BAN (tags) and PURGE (URL): start
# varnishd with `-f /path/to/varnish.vcl`. With Debian's varnish-modules installed, use
# varnish-xkey.vcl instead: it purges by tag through the xkey vmod too. The rules live in
# varnish-common.vcl, next to this file (its ACL and the cookies of Cachegrain-Context are yours to
# set there).
#
# The application, as Varnish reaches it: its address and port.
backend default {
  .host = "127.0.0.1";
  .port = "3000";
}

include "./varnish-common.vcl";

# PURGE with xkey-purge or xkey-softpurge needs the xkey vmod (varnish-xkey.vcl).
sub cachegrain_purge_keys {
  return (synth(501, "xkey purges need varnish-xkey.vcl"));
}
