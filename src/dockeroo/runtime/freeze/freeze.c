/*
 * freeze: the no-op init dockeroo runs in containers while recipes work in
 * them.
 *
 * It blocks SIGTERM, SIGINT, SIGQUIT, SIGHUP and SIGCHLD and waits for them
 * with rt_sigtimedwait(2):
 *   - SIGTERM, SIGINT, SIGQUIT or SIGHUP: exit 0 at once (so `docker stop`
 *     returns immediately, also as PID 1, where signals with the default
 *     action would be ignored);
 *   - SIGCHLD: reap every exited child (waitpid(-1, WNOHANG) loop), so
 *     processes started with `docker exec` and orphaned leave no zombies.
 * No signal handler runs, so no restorer trampoline is needed.
 *
 * No libc: raw system calls for x86_64 and aarch64 only.  Build with
 * ./build.sh (see there for the flags); the result is a static ELF of a
 * few hundred bytes.
 */

#define SIGHUP   1
#define SIGINT   2
#define SIGQUIT  3
#define SIGTERM 15
#define SIGCHLD 17

#define SIG_BLOCK 0
#define WNOHANG   1

#if defined(__x86_64__)
#define NR_rt_sigprocmask   14
#define NR_wait4            61
#define NR_rt_sigtimedwait 128
#define NR_exit_group      231

static long syscall4(long n, long a, long b, long c, long d)
{
	long ret;
	register long r10 __asm__("r10") = d;
	__asm__ volatile ("syscall"
			  : "=a"(ret)
			  : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			  : "rcx", "r11", "memory");
	return ret;
}

/* The kernel enters with %rsp 16-byte aligned; C expects a call frame. */
__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	xor %ebp, %ebp\n"
	"	and $-16, %rsp\n"
	"	call freeze_main\n"
	"	hlt\n");

#elif defined(__aarch64__)
#define NR_rt_sigprocmask  135
#define NR_rt_sigtimedwait 137
#define NR_exit_group       94
#define NR_wait4           260

static long syscall4(long n, long a, long b, long c, long d)
{
	register long x8 __asm__("x8") = n;
	register long x0 __asm__("x0") = a;
	register long x1 __asm__("x1") = b;
	register long x2 __asm__("x2") = c;
	register long x3 __asm__("x3") = d;
	__asm__ volatile ("svc #0"
			  : "+r"(x0)
			  : "r"(x8), "r"(x1), "r"(x2), "r"(x3)
			  : "memory");
	return x0;
}

__asm__(".text\n"
	".global _start\n"
	"_start:\n"
	"	mov x29, #0\n"
	"	mov x30, #0\n"
	"	bl freeze_main\n"
	"	brk #0\n");

#else
#error "freeze: unsupported architecture (add its system call numbers)"
#endif

#define BIT(sig) (1UL << ((sig) - 1))

__attribute__((noreturn, used)) void freeze_main(void)
{
	unsigned long set = BIT(SIGHUP) | BIT(SIGINT) | BIT(SIGQUIT) |
			    BIT(SIGTERM) | BIT(SIGCHLD);
	long sig;

	/* Blocked signals are queued even for PID 1, and waited for below. */
	syscall4(NR_rt_sigprocmask, SIG_BLOCK, (long)&set, 0, sizeof(set));
	for (;;) {
		sig = syscall4(NR_rt_sigtimedwait, (long)&set, 0, 0, sizeof(set));
		if (sig == SIGCHLD) {
			while (syscall4(NR_wait4, -1, 0, WNOHANG, 0) > 0)
				;
		} else if (sig > 0) {
			syscall4(NR_exit_group, 0, 0, 0, 0);
		}
		/* sig < 0: EINTR (e.g. after SIGSTOP/SIGCONT); wait again */
	}
}
