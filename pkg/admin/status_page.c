/* status_page — the page served at GET / on the admin listener. Its source is
 * pkg/admin/status.html (edit that); the build turns it into admin/status_html.inc. */
#include <stddef.h>

#include "admin/internal.h"

const char oe_admin_status_html[] = {
#include "admin/status_html.inc"
};
const size_t oe_admin_status_html_len = sizeof(oe_admin_status_html) - 1;
