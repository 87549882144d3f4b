#pragma once
// FlowSink: where the proxy core sends flows. The one seam between the exchanges running on the
// worker threads and everything that keeps or shows flows (the session store, the viewer, the
// console line), so the core is tested with a fake sink and the store can change beneath it.
//
// Contract, per flow id:
//   Publish(snapshot)*  then  Record(final)  exactly once.
// - Publish: a running exchange's snapshot (state kLive or kHeld, revision growing). Called when
//   the request head arrives and as the exchange progresses (response head, bytes so far, held,
//   resumed), throttled by the caller. Must be cheap and never wait on disk: the viewer shows it
//   and a store may update its row in place. Never reaches the JSONL session log.
// - Record: the finished flow (state kDone, or failed with error set). Exactly one JSONL line.
//   Nothing is published for the id afterwards.
// Both are called from worker threads, concurrently.

#include <memory>

#include "flow/flow.h"

namespace mitmd {

class FlowSink {
 public:
  virtual ~FlowSink() = default;
  virtual void Publish(std::shared_ptr<const Flow> snapshot) = 0;
  virtual void Record(std::shared_ptr<const Flow> flow) = 0;
};

}  // namespace mitmd
