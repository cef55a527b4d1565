// ThreadSanitizer cannot see the synchronisation inside Debian's libddsc
// (not built with -fsanitize=thread: its own atomics and lock-free queues
// are invisible), so it reports races entirely inside Cyclone DDS, e.g. a
// mutex read by a receive thread after another thread malloc'ed and
// initialised it and published it through Cyclone's own atomics. Those are
// suppressed; races in our code, even when Cyclone's threads call into it,
// are still reported (the frames are ours then, not "called_from_lib").
// TSan calls this hook if it is linked in; without TSan it is never called.
extern "C" const char* __tsan_default_suppressions() {
  return "called_from_lib:libddsc.so.0debian\n"
         "called_from_lib:libddsc.so\n"
         "race:*libddsc*\n"
         "mutex:*libddsc*\n";
}
