#pragma once
// The libevent side of the viewer's request gate (request_gate.h): a filter bufferevent between
// a connection and evhttp. Request bytes reach evhttp only once their head passed the gate; a
// refused request is answered from here, before its body is read, and the connection closes
// after a short linger (so the client reads the answer instead of a reset).
//
// Over a plain socket the filter writes evhttp's output straight to the socket and reports it
// sent only once the kernel has it: evhttp closes a connection as soon as it believes its reply
// is out, which would cut short a reply still queued in a lower bufferevent.

#include <event2/bufferevent.h>
#include <event2/event.h>

#include "web/request_gate.h"

namespace mitmd::web {

// A bufferevent for evhttp_set_bevcb over |inner|: a socket bufferevent whose fd evhttp sets
// afterwards, or a filter over one (TLS). Takes |inner| (freeing the result frees it).
// nullptr on allocation failure (|inner| is freed then).
bufferevent* NewGatedBufferevent(event_base* base, bufferevent* inner, RequestGate::Decide decide);

}  // namespace mitmd::web
