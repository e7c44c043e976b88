#
# cachegrain's rules for Varnish 7.1 (VCL 4.1), included by varnish.vcl or varnish-xkey.vcl: start
# Varnish with one of those, never with this file alone. Two things here are yours to set:
#
#   1. acl cachegrain_purgers: who may send BAN and PURGE (the application's hosts).
#   2. sub cachegrain_context: the cookies your pages vary on (cookie:theme), by name.
#
# The application announces what this file acts on, and this file keeps it from the visitor:
#   Surrogate-Control   the edge's lifetime (max-age, stale-while-revalidate, stale-if-error) and
#                       ESI (content="ESI/1.0"); it wins over Cache-Control here, and is dropped.
#   xkey                the page's tags, for BAN by tag and the xkey vmod; dropped.
#   Cachegrain-Context  a request header set here from the cookies named below: a page varying on
#                       those cookies alone answers Vary: Cachegrain-Context instead of Vary: Cookie,
#                       so one copy is kept per theme, not per visitor.
#

import std;
import cookie;

# 1. Who may purge: BAN and PURGE from anywhere else get 405. List the application's addresses
#    (every process that invalidates), e.g. "10.0.0.0"/8; loopback alone by default.
acl cachegrain_purgers {
  "127.0.0.1";
  "::1";
}

# 2. The cookies a page's contexts read (cookie:theme, cookie:lang), one `name=value` each, in one
#    header: list every cookie a page of yours varies on, or such a page keeps Vary: Cookie.
#    Two cookies:
#      set req.http.Cachegrain-Context = "theme=" + cookie.get("theme") + "; lang=" + cookie.get("lang");
sub cachegrain_context {
  set req.http.Cachegrain-Context = "theme=" + cookie.get("theme");
}

sub vcl_recv {
  if (req.method == "BAN" || req.method == "PURGE") {
    if (client.ip !~ cachegrain_purgers) {
      return (synth(405, "Not allowed"));
    }
    if (req.method == "BAN") {
      call cachegrain_ban;
    }
    if (req.http.xkey-purge || req.http.xkey-softpurge) {
      call cachegrain_purge_keys;
    }
    # Every variant of the URL (Host and path), whatever it varies on.
    return (purge);
  }
  # Set here alone: a visitor's own would choose the copy another visitor's cookies were rendered for.
  unset req.http.Cachegrain-Context;
  if (req.http.Cookie) {
    cookie.parse(req.http.Cookie);
  }
  call cachegrain_context;
  # The application sends ESI includes only to a surrogate that says it assembles them.
  set req.http.Surrogate-Capability = {"cachegrain="ESI/1.0""};
  if (req.method != "GET" && req.method != "HEAD") {
    return (pass);
  }
  if (req.http.Authorization) {
    return (pass);
  }
  # Looked up with the visitor's cookies: the response's Vary says what of them it depends on.
  return (hash);
}

# BAN / with Cachegrain-Ban-All: 1 drops everything; with Cachegrain-Ban-Regex, every page whose
# tags match. A ban expression cannot hold a space, and tags never do: a space of the regex (its
# separators) stands for any whitespace.
sub cachegrain_ban {
  if (req.http.Cachegrain-Ban-All) {
    ban("obj.status != 0");
    return (synth(200, "Banned"));
  }
  if (req.http.Cachegrain-Ban-Regex) {
    ban("obj.http.xkey ~ " + regsuball(req.http.Cachegrain-Ban-Regex, " ", "[[:space:]]"));
    return (synth(200, "Banned"));
  }
  return (synth(400, "BAN needs Cachegrain-Ban-Regex or Cachegrain-Ban-All"));
}

sub vcl_backend_response {
  # The tags in one line, for a ban's regex to match one tag between spaces.
  if (beresp.http.xkey) {
    std.collect(beresp.http.xkey, " ");
  }
  # What this cache keeps it by: Surrogate-Control, meant for it, over Cache-Control, meant for all.
  if (beresp.http.Surrogate-Control) {
    set beresp.http.cachegrain-directives = beresp.http.Surrogate-Control;
  } else {
    set beresp.http.cachegrain-directives = beresp.http.Cache-Control;
  }
  if (beresp.http.Surrogate-Control ~ {"content="ESI/1.0""}) {
    set beresp.do_esi = true;
  }
  # Kept for Surrogate-Control's max-age, else Cache-Control's s-maxage (for shared caches), else its
  # max-age: a browser's max-age=0 beside an s-maxage still leaves the page here for the s-maxage.
  if (beresp.http.Surrogate-Control ~ "(^|[ ,])max-age=[0-9]+") {
    set beresp.ttl = std.duration(regsub(beresp.http.Surrogate-Control, "^(.*[ ,])?max-age=([0-9]+).*$", "\2s"), 0s);
  } elsif (beresp.http.Cache-Control ~ "(^|[ ,])s-maxage=[0-9]+") {
    set beresp.ttl = std.duration(regsub(beresp.http.Cache-Control, "^(.*[ ,])?s-maxage=([0-9]+).*$", "\2s"), 0s);
  } elsif (beresp.http.Cache-Control ~ "(^|[ ,])max-age=[0-9]+") {
    set beresp.ttl = std.duration(regsub(beresp.http.Cache-Control, "^(.*[ ,])?max-age=([0-9]+).*$", "\2s"), 0s);
  }
  # Stale while one refresh runs; a refresh that fails keeps the stale copy (see vcl_backend_error).
  if (beresp.http.cachegrain-directives ~ "stale-while-revalidate=[0-9]+") {
    set beresp.grace = std.duration(regsub(beresp.http.cachegrain-directives, "^.*stale-while-revalidate=([0-9]+).*$", "\1s"), 0s);
  } else {
    set beresp.grace = 0s;
  }
  # Kept past its grace for stale-if-error's length, for a refresh to revalidate it by a conditional
  # request; it is served stale no longer than its grace.
  if (beresp.http.cachegrain-directives ~ "stale-if-error=[0-9]+") {
    set beresp.keep = std.duration(regsub(beresp.http.cachegrain-directives, "^.*stale-if-error=([0-9]+).*$", "\1s"), 0s);
  }
  if (beresp.status >= 500 && bereq.is_bgfetch) {
    return (abandon);
  }
  # One visitor's response, or one no cache may keep: never kept, whatever its lifetime says. A page
  # whose holes are streamed (holes: 'stream') is private: it is passed to the visitor as it comes
  # (beresp.do_stream, on by default: leave it on).
  if (beresp.http.Set-Cookie
      || beresp.http.cachegrain-directives ~ "(?i)(private|no-store|no-cache)"
      || beresp.http.Vary == "*"
      || beresp.ttl <= 0s) {
    unset beresp.http.cachegrain-directives;
    set beresp.ttl = 120s;
    set beresp.uncacheable = true;
    return (deliver);
  }
  unset beresp.http.cachegrain-directives;
  return (deliver);
}

sub vcl_backend_error {
  # The application is down while a stale copy is served: the copy stays.
  if (bereq.is_bgfetch) {
    return (abandon);
  }
}

sub vcl_deliver {
  # An ESI include answered with anything but 200 (a refusal, an error, the application out of
  # reach) adds nothing to the page: a visitor never sees an error body in place of a hole.
  if (req.esi_level > 0 && resp.status != 200) {
    return (synth(200));
  }
  if (resp.http.Surrogate-Control ~ {"content="ESI/1.0""}) {
    # Assembled here for one visitor: no cache after this one may keep it.
    if (!resp.http.Cache-Control) {
      set resp.http.Cache-Control = "private";
    } elsif (resp.http.Cache-Control !~ "(?i)\bprivate\b") {
      set resp.http.Cache-Control = "private, " + regsuball(resp.http.Cache-Control, "(?i)\b(public|s-maxage=[0-9]+)\s*(,\s*|$)", "");
    }
  }
  # Its age here counts against this cache's lifetime, not against the browser's max-age.
  if (resp.http.Surrogate-Control ~ "max-age=" || resp.http.Cache-Control ~ "s-maxage=") {
    unset resp.http.Age;
  }
  unset resp.http.Surrogate-Control;
  unset resp.http.xkey;
  unset resp.http.Surrogate-Key;
  unset resp.http.Cache-Tag;
  unset resp.http.X-Cache;
  unset resp.http.X-Cache-Reason;
  unset resp.http.X-Cache-Contexts;
  unset resp.http.X-Cache-Max-Age;
}

sub vcl_synth {
  # In place of an include: nothing, never Varnish's error page.
  if (req.esi_level > 0) {
    set resp.status = 200;
    set resp.body = "";
    return (deliver);
  }
}
