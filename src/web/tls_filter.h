#pragma once
// TLS for the viewer (--web-tls) without libevent_openssl: a libevent filter bufferevent that
// runs a BoringSSL server session over memory BIOs. evhttp sees plaintext; the socket carries
// TLS records.

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <openssl/ssl.h>

namespace mitmd::web {

// A bufferevent for evhttp_set_bevcb: a TLS server filter over a socket bufferevent whose fd
// evhttp sets afterwards. Each connection gets its own SSL from |ctx| (up-ref'd by SSL_new).
// Freeing the returned bufferevent frees the SSL, the socket bufferevent and closes the fd.
// nullptr on allocation failure.
bufferevent* NewTlsServerBufferevent(event_base* base, SSL_CTX* ctx);

}  // namespace mitmd::web
