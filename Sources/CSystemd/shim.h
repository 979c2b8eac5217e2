// libsystemd (Debian's libsystemd-dev): login sessions, sd_notify and socket activation, the journal.
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-login.h>
