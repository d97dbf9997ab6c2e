/* Child processes for tests and benches (see test_proc.h). */
#include "test_proc.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

pid_t herd_test_spawn_piped(char *const argv[], const char *log, int *in_fd,
                            int *out_fd)
{
  int in[2], out[2];
  if (pipe(in))
    return -1;
  if (pipe(out)) {
    close(in[0]);
    close(in[1]);
    return -1;
  }
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    int err = log ? open(log, O_WRONLY | O_CREAT | O_APPEND, 0644)
                  : open("/dev/null", O_WRONLY);
    if (err >= 0)
      dup2(err, 2);
    for (int fd = 3; fd < 256; fd++)
      close(fd);
    execv(argv[0], argv);
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  if (pid < 0) {
    close(in[1]);
    close(out[0]);
    return -1;
  }
  fcntl(out[0], F_SETFL, O_NONBLOCK);
  *in_fd = in[1];
  *out_fd = out[0];
  return pid;
}

int herd_test_free_port(void)
{
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0)
    return -1;
  struct sockaddr_in addr = {0};
  socklen_t len = sizeof addr;
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int ok = bind(fd, (struct sockaddr *)&addr, sizeof addr) == 0 &&
           getsockname(fd, (struct sockaddr *)&addr, &len) == 0;
  close(fd);
  return ok ? ntohs(addr.sin_port) : -1;
}
