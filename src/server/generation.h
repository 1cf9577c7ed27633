// The completions and chat-completions handlers (internal to the server library): turn a parsed
// request into engine requests (n per prompt), follow their streams, and answer as one JSON body
// or as SSE chunks.
#pragma once

#include <string>

#include "server/protocol.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace nibble::server {

class Server;

class GenerationHandler {
 public:
  explicit GenerationHandler(Server* server) : server_(server) {}
  void handle(const httplib::Request& req, httplib::Response& res, Endpoint endpoint);

 private:
  Server* server_;
};

// Watches a request's TCP connection for the client going away (FIN/RST) without reading from it.
class PeerWatch {
 public:
  // Finds the socket of the connection (local_port, remote_addr:remote_port); -1 when not found.
  PeerWatch(int local_port, const std::string& remote_addr, int remote_port);
  bool closed() const;

 private:
  int fd_ = -1;
};

}  // namespace nibble::server
