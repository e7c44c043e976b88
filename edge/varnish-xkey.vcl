vcl 4.1;
#
# Varnish in front of a cachegrain application, purging by BAN (tags), PURGE (URL) and the xkey
# vmod (Debian's varnish-modules): start varnishd with `-f /path/to/varnish-xkey.vcl`. The
# rules live in varnish-common.vcl, next to this file (its ACL and the cookies of
# Cachegrain-Context are yours to set there).
#
import xkey;

# The application, as Varnish reaches it: its address and port.
backend default {
  .host = "127.0.0.1";
  .port = "3000";
}

include "./varnish-common.vcl";

# PURGE / with xkey-purge: <tags> drops every page tagged with one of them; xkey-softpurge: <tags>
# makes them stale, served in their grace while one refresh runs.
sub cachegrain_purge_keys {
  if (req.http.xkey-purge) {
    return (synth(200, "Purged " + xkey.purge(req.http.xkey-purge)));
  }
  return (synth(200, "Soft-purged " + xkey.softpurge(req.http.xkey-softpurge)));
}
