/* SPDX-License-Identifier: MIT */
/*
 * What http.c shares with http_conn.c, and no one else: how a client's
 * curl handles are set up.
 */
#ifndef SBXFS_HTTP_PRIV_H
#define SBXFS_HTTP_PRIV_H

#include <curl/curl.h>

#include "sbxfs/http.h"

/* Set h up for c's server: transport, timeouts to connect, TLS files;
 * errbuf (CURL_ERROR_SIZE bytes) gets curl's words for a failure. */
void http_client_setup(const struct http_client *c, CURL *h, char *errbuf);
/* The header lines c sends with every request. */
const struct curl_slist *http_client_headers(const struct http_client *c);
/* The client's bound on a whole small request, in ms. */
int http_client_timeout_ms(const struct http_client *c);

#endif
