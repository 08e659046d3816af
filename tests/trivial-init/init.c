/* The smallest useful PID 1: prints one line and powers off. Boot tests and
 * cross/measure-boot.sh compare its time to first line with the agent's. */
#include <stdio.h>
#include <sys/reboot.h>
#include <termios.h>
#include <unistd.h>

int main(void)
{
    /* The kernel opened /dev/console as stdin/stdout/stderr for us. */
    fputs("trivial-init: first line\n", stdout);
    fflush(stdout);
    tcdrain(STDOUT_FILENO); /* the line must be out of the UART before power goes */
    reboot(RB_POWER_OFF);
    for (;;)
        pause();
}
