/*
 * config — the effective configuration of ott-edge.
 *
 * Owns: reading the YAML file (libyaml), the OTT_EDGE_* environment overrides and
 * their *_FILE forms, parsing durations/sizes/CIDRs/lists, validating every key, and
 * printing the effective configuration with secrets redacted.
 * Must not touch: sockets, TLS, threads, or process exit. A failure is returned as
 * an error message naming the key (and the YAML line); the caller decides to exit 2.
 * The resulting struct is immutable after oe_config_load() returns.
 */
#ifndef OE_CONFIG_H
#define OE_CONFIG_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define OE_CONFIG_DEFAULT_PATH "/etc/ott-edge/config.yaml"
#define OE_CONFIG_ERR_MAX      512

/* An address range from proxy.trusted_proxies ("10.0.0.0/8", "::1", "fd00::/8"). */
typedef struct oe_cidr {
    int family;             /* AF_INET or AF_INET6 */
    unsigned char addr[16]; /* network address, host bits cleared */
    unsigned prefix;        /* 0..32 or 0..128 */
} oe_cidr_t;

typedef struct oe_strlist {
    char **items;
    size_t count;
} oe_strlist_t;

enum oe_log_format { OE_LOG_FORMAT_TEXT = 0, OE_LOG_FORMAT_JSON = 1 };
enum oe_key_type { OE_KEY_EC256 = 0, OE_KEY_EC384, OE_KEY_RSA2048 };
enum oe_tristate { OE_AUTO = -1, OE_OFF = 0, OE_ON = 1 };
enum oe_balance { OE_BALANCE_ROUND_ROBIN = 0, OE_BALANCE_LEAST_CONN, OE_BALANCE_HASH };
enum oe_hash_kind { OE_HASH_CLIENT_IP = 0, OE_HASH_HEADER, OE_HASH_COOKIE, OE_HASH_PATH_SEGMENT };

#define OE_CONFIG_MAX_SITES     256
#define OE_CONFIG_SITE_NAME_MAX 64

#define OE_CONFIG_MAX_PATHS 64 /* entries of one `paths` list */

/* An `access` block (access control at the edge; pkg/access compiles and applies it). At the
 * top level, in a site and in a `paths` entry; every key not set inherits, key by key, from
 * the enclosing level (a paths entry from its site, a site from the top level). */
typedef struct oe_config_rate {
    int requests;    /* per `per`; 0: no limit */
    uint64_t per_ms; /* default 1s */
    int burst;       /* the bucket: requests at once; 0: the same as requests */
} oe_config_rate_t;

typedef struct oe_config_access {
    oe_cidr_t *allow; /* [] : everyone (unless denied) */
    size_t allow_count;
    oe_cidr_t *deny;
    size_t deny_count;
    char *basic_auth;     /* htpasswd file; NULL: none */
    int pass_credentials; /* keep Authorization on its way upstream */
    oe_config_rate_t rate, websocket_rate;
    int max_connections; /* per client; 0: no limit */
    int max_websockets;  /* per client; 0: no limit */
} oe_config_access_t;

/* One `paths` entry: a path prefix with its own access rules. */
typedef struct oe_config_path {
    char *prefix;              /* starts with '/'; case-insensitive; matches itself, prefix/ and prefix/... */
    oe_config_access_t access; /* resolved: what the entry does not set comes from its site */
    int own_rate;              /* the entry sets access.rate itself: a bucket of its own */
    int own_websocket_rate;    /* the same for access.websocket_rate */
    uint32_t set;              /* which access keys the entry sets (bit i: oe_config_access_keys()[i]) */
} oe_config_path_t;

/* One upstream server, parsed once from "http://host:port". */
typedef struct oe_upstream_addr {
    char *url;  /* as written, normalised: "http://127.0.0.1:8080" */
    char *host; /* "127.0.0.1", "ott", "::1" (no brackets) */
    uint16_t port;
    char *authority; /* "127.0.0.1:8080", "[::1]:8080" */
} oe_upstream_addr_t;

/* One site: the names it answers for, where it proxies to, its certificate and the per-app
 * settings (each one inherited from the top level unless the site sets it). */
typedef struct oe_site {
    char *name;           /* unique, [a-z0-9._-], at most OE_CONFIG_SITE_NAME_MAX; stable across reloads */
    oe_strlist_t domains; /* lower-cased; may hold "*.example.com" */
    oe_upstream_addr_t *upstreams;
    size_t upstreams_count; /* >= 1 */
    enum oe_balance balance;
    struct {
        enum oe_hash_kind kind;
        char *name;       /* header or cookie name (header lower-cased); NULL otherwise */
        unsigned segment; /* path_segment:N, N >= 1 ("/api/room/x": 1 = api, 3 = x) */
    } hash;
    char *cert_file, *key_file; /* NULL: ACME (or self-signed) */
    char *hsts;
    struct {
        oe_strlist_t block_paths;
        uint64_t websocket_idle_timeout_ms;
        uint64_t max_body_size;
        uint64_t upstream_timeout_ms;
        char *health_path;
        uint64_t health_interval_ms;
        unsigned health_rise, health_fall;
    } proxy;
    int cache_enabled;
    int compress_enabled;
    oe_config_access_t access; /* inherited key by key from the top-level access */
    oe_config_path_t *paths;   /* the site's own `paths`, else the top-level ones (resolved for this site) */
    size_t paths_count;
} oe_site_t;
enum oe_dns_provider { OE_DNS_NONE = 0, OE_DNS_RFC2136, OE_DNS_EXEC };
enum oe_tsig_algorithm { OE_TSIG_HMAC_SHA256 = 0, OE_TSIG_HMAC_SHA512 };

typedef struct oe_config {
    char *source; /* path of the YAML file read, or NULL when none */

    oe_strlist_t domains; /* names served and put on the certificate */
    char *upstream;       /* "http://127.0.0.1:8080" */
    int threads;          /* worker threads; default: number of CPUs */
    char *state_dir;      /* "/var/lib/ott-edge" */
    char *hsts;           /* Strict-Transport-Security value; "" disables */
    char *user;           /* drop to this user after binding when started as root; "" = stay */

    struct {
        char *https; /* ":443" */
        char *http;  /* ":80"; "" disables the HTTP listener */
        char *admin; /* ":9901"; "" disables the admin listener */
    } listen;

    struct {
        char *cert_file;              /* PEM chain; NULL when not set */
        char *key_file;               /* PEM private key; NULL when not set */
        uint64_t session_lifetime_ms; /* default 18h; 0: no session resumption */
    } tls;

    struct {
        oe_cidr_t *trusted_proxies;
        size_t trusted_proxies_count;
        char *real_ip_header;               /* NULL when not set */
        uint64_t websocket_idle_timeout_ms; /* default 7d, at most 24d */
        uint64_t upstream_timeout_ms;       /* default 60s: no response head by then -> 504 */
        uint64_t upstream_keepalive_ms;     /* default 2s, below Node's 5 s; 0 disables */
        uint64_t max_body_size;             /* default 16MiB */
        oe_strlist_t block_paths;           /* default [/api/status/metrics] */
        char *health_path;                  /* default "/api/status" */
        uint64_t health_interval_ms;        /* default 5s */
        int tcp_keepalive;                  /* default 1: keepalive probes on client and upstream sockets */
        uint64_t tcp_keepalive_idle_ms;     /* default 60s */
        uint64_t tcp_keepalive_interval_ms; /* default 10s */
        int tcp_keepalive_count;            /* default 6 */
        int health_rise;                    /* default 2: good checks in a row to take a server back */
        int health_fall;                    /* default 3: failures in a row to eject a server */
    } proxy;

    struct {
        uint64_t request_timeout_ms;   /* HTTP/1 request head and keep-alive idle; default 10s */
        uint64_t idle_timeout_ms;      /* HTTP/2 connection idle; default 120s */
        uint64_t handshake_timeout_ms; /* TLS handshake; default 10s */
    } client;

    struct {
        enum oe_log_format format; /* default text */
        int access;                /* default 0 */
        int level;                 /* OE_LOG_* from log.h; default info */
    } log;

    struct {
        uint64_t delay_ms;         /* default 5s */
        uint64_t grace_ms;         /* default 25s */
        uint64_t upgrade_grace_ms; /* default 1h: how long an upgraded-away process keeps its connections */
    } shutdown;

    struct {
        int enabled;        /* default 1 */
        oe_strlist_t types; /* media types compressed: "type/subtype", "type/" + "*", "+suffix" */
        uint64_t min_size;  /* default 1KiB: bodies of known length below it are sent as they are */
        int level;          /* 1..9, default 5: zlib level and brotli quality */
    } compress;

    struct {
        int enabled;              /* default 1 */
        uint64_t max_size;        /* default 64MiB: bytes held, LRU-evicted beyond */
        uint64_t max_object;      /* default 8MiB: larger responses are not stored */
        uint64_t lock_timeout_ms; /* default 1s: how long an identical miss waits for the first */
    } cache;

    struct {
        enum oe_tristate enabled; /* default auto: on when domains set and no tls.cert_file */
        char *directory;          /* resolved URL; default Let's Encrypt production */
        char *email;              /* NULL when not set */
        char *ca_file;            /* NULL: system trust */
        char *eab_kid;            /* NULL when not set */
        char *eab_hmac_key;       /* secret; NULL when not set */
        oe_strlist_t challenges;  /* default [tls-alpn-01, http-01] */
        enum oe_key_type key_type;
        uint64_t renew_before_ms; /* 0: when one third of the lifetime remains */
        uint64_t retry_base_ms;   /* first retry after a failure; doubles up to a day. Default 1m */
        char *preferred_chain;    /* issuer CN of the preferred chain; NULL: default chain */
        struct {
            enum oe_dns_provider provider; /* default none; DNS-01 needs one */
            struct {
                char *server;                         /* "host[:port]"; NULL when not set */
                char *key_name;                       /* TSIG key name; NULL: unsigned updates */
                enum oe_tsig_algorithm key_algorithm; /* default hmac-sha256 */
                char *key_secret;                     /* secret, base64; NULL when not set */
            } rfc2136;
            struct {
                char *command; /* hook program: COMMAND present|cleanup FQDN VALUE */
            } exec;
            oe_strlist_t resolvers; /* "ip[:port]": lookups and propagation checks; []: system + zone's NS */
        } dns;
        uint64_t dns_propagation_timeout_ms; /* default 2m; also bounds one exec hook run */
    } acme;

    oe_config_access_t access; /* top-level access.*: the one site's, or what sites inherit */
    int access_ipv6_prefix;    /* access.ipv6_prefix: IPv6 clients are keyed by this prefix (default 64) */
    oe_config_path_t *paths;   /* top-level `paths` (resolved against the top-level access) */
    size_t paths_count;

    struct {
        oe_cidr_t *allow; /* admin.allow: peers allowed on the status page and /metrics; []: any */
        size_t allow_count;
        char *token_file; /* admin.token_file: bearer token for them; NULL: none */
    } admin;

    struct {
        char *redis;               /* redis://[user:pass@]host:port[/db]; NULL: one node (state_dir only) */
        char *key_prefix;          /* default "ott-edge:" */
        uint64_t lock_ttl_ms;      /* default 60s */
        char *node_id;             /* NULL: the host name */
        char *encryption_key_file; /* NULL: keys stored in clear in Redis */
    } cluster;

    /* The sites, in the order written (or the one site made from domains + upstream + tls.*
     * when the file has no `sites`). Every per-site value is resolved (inherited or set). */
    oe_site_t *sites; /* always >= 1 after oe_config_load() */
    size_t sites_count;
    int default_site;        /* index into sites, -1: none */
    int sites_listed;        /* 1 when the configuration has a `sites` list */
    char *default_site_name; /* the default_site key as resolved: the site's name, "" for none */
} oe_config_t;

/*
 * Builds the effective configuration: defaults, then the YAML file (path, or NULL to
 * use $OTT_EDGE_CONFIG, else OE_CONFIG_DEFAULT_PATH if it exists), then the environment
 * (envp, NULL-terminated "K=V" strings; NULL means the process environment).
 * Returns NULL on failure with a one-line message in err naming the key (and line).
 */
oe_config_t *oe_config_load(const char *path, char *const *envp, char *err, size_t errlen);
void oe_config_free(oe_config_t *cfg);

/* Prints the effective configuration as YAML with secrets redacted, followed by the routing
 * table (as YAML comments, so the output reads back as the same configuration). */
void oe_config_print(const oe_config_t *cfg, FILE *out);

/* Writes the Markdown reference table of every key (key, environment variable, type,
 * default, meaning), then the table of the keys a site in `sites` may set: the tables in
 * docs/configuration.md and README.md. */
void oe_config_print_reference(FILE *out);

/* Whether type ("dns-01", ...) is among acme.challenges. */
int oe_config_challenge_on(const oe_config_t *cfg, const char *type);

/* Whether ACME is in effect once "auto" is resolved (some site needs a certificate from it). */
int oe_config_acme_enabled(const oe_config_t *cfg);

/* Whether site i gets its certificate from ACME: ACME is in effect, the site has names and
 * no tls.cert_file (in the one-site form, acme.enabled: true also replaces a tls.cert_file). */
int oe_config_site_acme(const oe_config_t *cfg, size_t i);

/* Which site serves a host name (no port, any case, a trailing dot ignored, an IPv6 literal
 * with or without brackets): an exact domain first, then a wildcard "*.rest" matching
 * exactly one more label; -1 when none (the default site is NOT applied: the caller
 * decides). Pure, allocation-free, thread-safe (the config is immutable). */
int oe_config_site_for_host(const oe_config_t *cfg, const char *host, size_t len);

/* The access keys, in the order of oe_config_path_t.set's bits ("access.allow", ...; the
 * paths the YAML and the reference use); *count gets their number. */
const char *const *oe_config_access_keys(size_t *count);

/* The index of the site with this name, or -1. */
int oe_config_site_by_name(const oe_config_t *cfg, const char *name);

/* Parses one upstream URL ("http://host:port", an optional trailing "/") into out (the
 * caller frees it with oe_config_upstream_free). Returns 0, or -1 with a message. */
int oe_config_parse_upstream(const char *url, oe_upstream_addr_t *out, char *msg, size_t len);
void oe_config_upstream_free(oe_upstream_addr_t *u);

/* cluster.redis, split: redis://[user[:password]@]host[:port][/db] (user and password
 * percent-decoded; port 6379 and db 0 by default; an IPv6 host in brackets). out may be NULL
 * (validation only). Returns 0, or -1 with a message. */
typedef struct oe_redis_url {
    char host[256];
    uint16_t port;
    int db;
    char user[128];     /* "" when none (AUTH password, or no AUTH) */
    char password[256]; /* "" when none */
} oe_redis_url_t;
int oe_config_parse_redis_url(const char *url, oe_redis_url_t *out, char *msg, size_t len);
/* cluster.encryption_key_file: reads the 32-byte key (raw bytes, 64 hex digits or base64, a
 * trailing newline allowed). Returns 0, or -1 with a message. */
int oe_config_read_key32(const char *file, unsigned char key[32], char *msg, size_t len);

/* Parsers shared with the tests and with other modules. Each returns 0 on success. */
int oe_config_parse_duration(const char *s, uint64_t *out_ms);
int oe_config_parse_size(const char *s, uint64_t *out_bytes);
int oe_config_parse_cidr(const char *s, oe_cidr_t *out);
int oe_config_parse_bool(const char *s, int *out);

/* Whether the address (AF_INET/AF_INET6 sockaddr) falls within one of the ranges.
 * IPv4-mapped IPv6 addresses match IPv4 ranges. */
int oe_cidr_match(const oe_cidr_t *list, size_t count, const struct sockaddr *sa);

/* Reads a whole file of at most max bytes that the configuration names (the YAML file, a
 * *_FILE secret, an htpasswd file), NUL-terminated and malloc'ed (*len without the NUL). A
 * directory is refused, and anything but a regular file when regular_only. NULL with a short
 * reason in why ("No such file or directory", "larger than N bytes", ...). */
char *oe_config_read_file_max(const char *path, size_t max, int regular_only, size_t *len, char *why, size_t whylen);

/* Reload support (diff.c). The keys whose change a reload cannot apply (new sockets, threads,
 * the user, settings fixed at start): written comma-separated into out; returns how many. */
size_t oe_config_upgrade_keys(const oe_config_t *a, const oe_config_t *b, char *out, size_t len);
/* Whether a and b give ACME the same work (account, CA, challenges, every site's names and
 * whether ACME certifies it, state_dir): when not, a reload restarts the ACME manager. */
int oe_config_acme_same(const oe_config_t *a, const oe_config_t *b);

/* Splits "host:port" / "[v6]:port" / ":port" for the listeners. host is "" for any. */
int oe_config_split_hostport(const char *s, char *host, size_t hostlen, uint16_t *port);
/* Like oe_config_split_hostport, but the port may be left out ("ns1.example.com",
 * "192.0.2.1", "2001:db8::1", "[2001:db8::1]"): then it is default_port. */
int oe_config_split_hostport_opt(const char *s, char *host, size_t hostlen, uint16_t *port, uint16_t default_port);

#endif
