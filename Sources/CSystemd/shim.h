// libsystemd (Debian's libsystemd-dev): login sessions now; sd_notify and the journal later.
#include <systemd/sd-login.h>
#include <systemd/sd-daemon.h>
