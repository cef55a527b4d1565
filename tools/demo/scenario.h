// The run itself, in the order it happens (the parent's script):
//   1. create the channel (removing a stale one of the same name, and the
//      channels of killed earlier runs when the name is generated) and
//      print the banner;
//   2. start the consumer and wait until it listens, then P0, P1, P2 and wait
//      until each holds a sender slot;
//   3. at options.kill_at_s, SIGKILL P1. With options.kill_in_send the kill
//      is aimed: the parent pins itself and P1 to different CPUs, asks P1 for
//      a burst and fires as soon as it starts, so P1 usually dies inside
//      Send(). Then it shows what the kernel left in P1's sender slot
//      (OWNER_DIED) and how many slots were free (none), and starts P3,
//      whose MakeSender can only succeed by recovering P1's slot;
//   4. at options.duration_s, stop the producers, let the consumer drain and
//      print its summary, and judge: every child ended as it should (P1 by
//      SIGKILL, the others with exit code 0), P3 got P1's slot through
//      exactly one recovery with no slot free before;
//   5. print the channel dump (a failed dump is a failure too), remove the
//      channel, print the RESULT line.
//
// Contract: call once, from main, in a single-threaded process; it forks.
// Returns the process exit code: 0 every check passed; 1 a check failed, a
// child died early, setup timed out or the run was interrupted ("RESULT:
// FAIL: why"); 2 the run could not start (shared page or channel). Children
// and channel are cleaned up on every return (supervisor.h).
#ifndef LOCKLESS_TOOLS_DEMO_SCENARIO_H_
#define LOCKLESS_TOOLS_DEMO_SCENARIO_H_

#include "tools/demo/options.h"

namespace lockless {
namespace demo {

int RunDemo(const DemoOptions& options);

}  // namespace demo
}  // namespace lockless

#endif  // LOCKLESS_TOOLS_DEMO_SCENARIO_H_
