// CUDA host emulator: the execution model of kernels/*.cu on a CPU.
//
// Included ahead of a kernel family's source (compiled with -D__CUDACC__, so
// the __global__ wrappers are built as well as the per-thread math).  Each
// launch runs its blocks one after another; the threads of a block are fibers
// (cooperative, one OS thread), so __syncthreads() and __shfl_down_sync() are
// real rendezvous points: a fiber stops there until every thread of its block
// (of its warp) has arrived.  A barrier that not every thread reaches, a
// shuffle on a partial warp or with another mask, a block of more than 1024
// threads or a grid dimension out of CUDA's range fail the launch with a
// message, as they would hang or misbehave on a device.  __shared__ variables
// are function statics: one copy, shared by the fibers of the running block, poisoned before
// each block, and the threads between two barriers run from the highest index down.
//
// Arguments come as CUDA's kernelParams do (one pointer per parameter); the
// launcher reads sizeof(parameter) bytes from each, as the driver does.  The
// caller copies each array argument to end at an inaccessible page: a read or
// write past its end faults, and the launch fails naming the argument.  The
// caller (tests/cuda_emulator/cupy) checks the argument types first, using the
// parameter layout exported by emu_params_*.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>

#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#if !defined(__x86_64__)
#include <ucontext.h>
#endif

// ---- CUDA's qualifiers and built-in variables --------------------------------------
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
#define __restrict__ __restrict
// Every __shared__ variable lands in one section, poisoned (all bits set: NaN, -1) before each block:
// a read that no barrier orders after its write reads the poison, not a value left by an earlier block.
#define __shared__ static __attribute__((section("emu_shared"), used))
extern "C" char __start_emu_shared[] __attribute__((weak, visibility("hidden")));
extern "C" char __stop_emu_shared[] __attribute__((weak, visibility("hidden")));

struct uint3 {
    unsigned int x, y, z;
};
typedef uint3 dim3;

namespace emu {
struct Fiber;
struct Block;
extern thread_local Fiber* cur;
extern thread_local Block* blk;
}  // namespace emu

#define threadIdx (::emu::cur_tid())
#define blockIdx (::emu::blk_idx())
#define blockDim (::emu::blk_dim())
#define gridDim (::emu::grid_dim())

// ---- intrinsics: IEEE round-to-nearest operations that are never contracted into an FMA
// (the emulator is compiled with FMA contraction on, as NVRTC compiles by default)
template <typename T>
static inline T emu_opaque(T v) {
    volatile T r = v;
    return r;
}
static inline float __fmul_rn(float a, float b) { return emu_opaque(a * b); }
static inline float __fadd_rn(float a, float b) { return emu_opaque(a + b); }
static inline float __fdiv_rn(float a, float b) { return emu_opaque(a / b); }
static inline double __dmul_rn(double a, double b) { return emu_opaque(a * b); }
static inline double __dadd_rn(double a, double b) { return emu_opaque(a + b); }
static inline double __ddiv_rn(double a, double b) { return emu_opaque(a / b); }
static inline int __double2int_rn(double a) { return (int)nearbyint(a); }
static inline int __float2int_rn(float a) { return (int)nearbyintf(a); }

namespace emu {

enum State { READY, AT_BLOCK, AT_WARP, DONE };

struct Fiber {
    void* sp;
    uint3 tid;
    unsigned linear;
    int state;
    unsigned shfl_gen;
#if !defined(__x86_64__)
    ucontext_t ctx;
#endif
};

struct Block {
    uint3 idx, dim, grid;
    unsigned n;
    std::vector<Fiber> fibers;
    std::vector<uint64_t> shfl[2];  // a warp's exchanged values, double-buffered by generation
    void* main_sp;
#if !defined(__x86_64__)
    ucontext_t main_ctx;
#endif
    void (*body)(void*);
    void* body_arg;
    const char* error;
};

thread_local Fiber* cur = nullptr;
thread_local Block* blk = nullptr;
static int ascending = 0;  // the order of a block's threads between two barriers (see run_block)
static int synced = 0;     // the last launch had a barrier or a shuffle

static inline const uint3& cur_tid() { return cur->tid; }
static inline const uint3& blk_idx() { return blk->idx; }
static inline const uint3& blk_dim() { return blk->dim; }
static inline const uint3& grid_dim() { return blk->grid; }

// ---- context switch --------------------------------------------------------------
#if defined(__x86_64__)
// Saves the callee-saved registers and the SSE/x87 control words on the current
// stack, stores its pointer in *from and continues on the stack `to`.
extern "C" void emu_switch(void** from, void* to);
__asm__(
    ".text\n"
    ".p2align 4\n"
    ".hidden emu_switch\n"
    ".globl emu_switch\n"
    ".type emu_switch,@function\n"
    "emu_switch:\n"
    "  pushq %rbp\n  pushq %rbx\n  pushq %r12\n  pushq %r13\n  pushq %r14\n  pushq %r15\n"
    "  subq $8, %rsp\n  stmxcsr (%rsp)\n  fnstcw 4(%rsp)\n"
    "  movq %rsp, (%rdi)\n  movq %rsi, %rsp\n"
    "  ldmxcsr (%rsp)\n  fldcw 4(%rsp)\n  addq $8, %rsp\n"
    "  popq %r15\n  popq %r14\n  popq %r13\n  popq %r12\n  popq %rbx\n  popq %rbp\n"
    "  ret\n"
    ".size emu_switch, .-emu_switch\n");
#endif

static const size_t STACK_BYTES = 256 * 1024;

struct Stacks {  // fiber stacks, kept between launches; a guard page below each
    std::vector<char*> mem;
    ~Stacks() {
        for (char* m : mem) munmap(m, STACK_BYTES);
    }
    char* get(size_t i) {
        while (mem.size() <= i) {
            void* m = mmap(nullptr, STACK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                           -1, 0);
            if (m == MAP_FAILED) return nullptr;
            mprotect(m, 4096, PROT_NONE);
            mem.push_back((char*)m);
        }
        return mem[i];
    }
};
static Stacks stacks;

static inline void yield_to_scheduler() {
#if defined(__x86_64__)
    emu_switch(&cur->sp, blk->main_sp);
#else
    swapcontext(&cur->ctx, &blk->main_ctx);
#endif
}

static void fiber_main() {
    blk->body(blk->body_arg);
    cur->state = DONE;
#if defined(__x86_64__)
    emu_switch(&cur->sp, blk->main_sp);
    __builtin_trap();  // a finished fiber is never resumed
#endif
}

static bool start_fiber(Fiber& f, size_t i) {
    char* stack = stacks.get(i);
    if (!stack) return false;
#if defined(__x86_64__)
    uintptr_t top = ((uintptr_t)(stack + STACK_BYTES)) & ~(uintptr_t)15;
    uint64_t* sp = (uint64_t*)top;
    *--sp = 0;                          // fiber_main's (never used) return address: entered with rsp % 16 == 8
    *--sp = (uint64_t)(void*)&fiber_main;  // emu_switch's ret goes here
    for (int r = 0; r < 6; ++r) *--sp = 0;  // rbp rbx r12-r15
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    --sp;
    memcpy((char*)sp, &mxcsr, 4);
    memcpy((char*)sp + 4, &fcw, 2);
    f.sp = sp;
#else
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = stack + 4096;
    f.ctx.uc_stack.ss_size = STACK_BYTES - 4096;
    f.ctx.uc_link = &blk->main_ctx;
    makecontext(&f.ctx, (void (*)())fiber_main, 0);
#endif
    return true;
}

static inline void resume(Fiber& f) {
    cur = &f;
#if defined(__x86_64__)
    emu_switch(&blk->main_sp, f.sp);
#else
    swapcontext(&blk->main_ctx, &f.ctx);
#endif
    cur = nullptr;
}

// Runs one block to completion; returns an error message or nullptr.  Between two barriers
// the threads run from the highest index down (code that lets thread 0 write shared memory and
// the others read it without a barrier between reads the poison), or up with ``ascending``: the
// caller runs a launch with barriers both ways and compares (a race makes the results differ).
static const char* run_block(Block& b) {
    const unsigned n = b.n;
    if (__start_emu_shared && __stop_emu_shared > __start_emu_shared)
        memset(__start_emu_shared, 0xff, (size_t)(__stop_emu_shared - __start_emu_shared));
    for (unsigned i = 0; i < n; ++i) {
        Fiber& f = b.fibers[i];
        f.linear = i;
        f.tid = {i % b.dim.x, (i / b.dim.x) % b.dim.y, i / (b.dim.x * b.dim.y)};
        f.state = READY;
        f.shfl_gen = 0;
        if (!start_fiber(f, i)) return "could not map a fiber stack";
    }
    for (;;) {
        for (unsigned k = 0; k < n; ++k) {
            unsigned i = ascending ? k : n - 1 - k;
            if (b.fibers[i].state == READY) {
                resume(b.fibers[i]);
                if (b.error) return b.error;
            }
        }
        unsigned done = 0, at_block = 0, at_warp = 0;
        for (unsigned i = 0; i < n; ++i) {
            int s = b.fibers[i].state;
            done += s == DONE;
            at_block += s == AT_BLOCK;
            at_warp += s == AT_WARP;
        }
        if (done == n) return nullptr;
        if (at_warp) {  // every warp with a lane in a shuffle must be in it as a whole
            for (unsigned w0 = 0; w0 < n; w0 += 32) {
                unsigned lanes = n - w0 < 32 ? n - w0 : 32, in = 0;
                for (unsigned l = 0; l < lanes; ++l) in += b.fibers[w0 + l].state == AT_WARP;
                if (in == 0) continue;
                if (lanes != 32) return "__shfl_down_sync with a full mask in a partial warp (block size not a multiple of 32)";
                if (in != lanes) return "__shfl_down_sync not reached by every lane of the warp (divergent lanes)";
                for (unsigned l = 0; l < lanes; ++l) b.fibers[w0 + l].state = READY;
            }
            continue;
        }
        if (at_block) {
            if (done) return "__syncthreads() not reached by every thread of the block (some returned first)";
            for (unsigned i = 0; i < n; ++i) b.fibers[i].state = READY;
            continue;
        }
        return "no thread can proceed (deadlock)";
    }
}

static int run_grid(const unsigned* grid, const unsigned* block, void (*body)(void*), void* arg, char* err,
                    int errlen) {
    auto fail = [&](const char* m) {
        snprintf(err, errlen, "%s", m);
        return 1;
    };
    unsigned long long nt = (unsigned long long)block[0] * block[1] * block[2];
    if (nt == 0 || grid[0] == 0 || grid[1] == 0 || grid[2] == 0) return fail("empty launch (a zero grid or block dimension)");
    if (nt > 1024 || block[2] > 64) return fail("too many threads per block (CUDA allows 1024, and 64 in z)");
    if (grid[1] > 65535 || grid[2] > 65535) return fail("grid y or z dimension over 65535");
    Block b;
    b.dim = {block[0], block[1], block[2]};
    b.grid = {grid[0], grid[1], grid[2]};
    b.n = (unsigned)nt;
    b.fibers.resize(b.n);
    b.shfl[0].assign(b.n, 0);
    b.shfl[1].assign(b.n, 0);
    b.body = body;
    b.body_arg = arg;
    b.error = nullptr;
    blk = &b;
    const char* e = nullptr;
    for (unsigned z = 0; z < grid[2] && !e; ++z)
        for (unsigned y = 0; y < grid[1] && !e; ++y)
            for (unsigned x = 0; x < grid[0] && !e; ++x) {
                b.idx = {x, y, z};
                e = run_block(b);
            }
    blk = nullptr;
    if (e) {
        char where[64];
        snprintf(where, sizeof where, " [block %u,%u,%u]", b.idx.x, b.idx.y, b.idx.z);
        snprintf(err, errlen, "%s%s", e, where);
        return 1;
    }
    return 0;
}

// ---- memory faults ----------------------------------------------------------------
// The caller places each array argument so that it ends at an inaccessible page (guards: [page, page
// end, argument index] triples).  A fault during the launch ends it with a message naming the argument
// (or, outside every guard, the address: a wild pointer or a fiber's stack overflow).
struct Faults {
    pthread_t thread;  // the launching thread: a fault in any other is not the launch's
    const uintptr_t* guards = nullptr;
    int nguards = 0;
    sigjmp_buf jmp;
    volatile sig_atomic_t armed = 0;
    char msg[256];
    struct sigaction old_segv, old_bus;
    stack_t old_stack;
};
static Faults faults;
static char alt_stack[1 << 16];

static void on_fault(int sig, siginfo_t* si, void*) {
    if (!faults.armed || !pthread_equal(pthread_self(), faults.thread)) {  // not a launch's: the handler
        // that was there before takes it
        sigaction(SIGSEGV, &faults.old_segv, nullptr);
        sigaction(SIGBUS, &faults.old_bus, nullptr);
        raise(sig);
        return;
    }
    faults.armed = 0;
    uintptr_t a = (uintptr_t)si->si_addr;
    int found = 0;
    for (int i = 0; i < faults.nguards && !found; ++i) {
        const uintptr_t* g = faults.guards + 3 * i;
        if (a >= g[0] && a < g[1]) {
            snprintf(faults.msg, sizeof faults.msg,
                     "argument %d: an access %lu bytes past the end of its array (out of bounds)", (int)g[2],
                     (unsigned long)(a - g[0]));
            found = 1;
        }
    }
    if (!found) snprintf(faults.msg, sizeof faults.msg, "a memory fault at %p, outside every argument's array", (void*)a);
    siglongjmp(faults.jmp, 1);
}

template <typename F>
static int with_fault_guard(const uintptr_t* guards, int nguards, char* err, int errlen, F run) {
    faults.guards = guards;
    faults.nguards = nguards;
    faults.thread = pthread_self();
    synced = 0;
    stack_t st;
    st.ss_sp = alt_stack;
    st.ss_size = sizeof alt_stack;
    st.ss_flags = 0;
    sigaltstack(&st, &faults.old_stack);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &faults.old_segv);
    sigaction(SIGBUS, &sa, &faults.old_bus);
    int rc;
    if (sigsetjmp(faults.jmp, 1)) {
        blk = nullptr;
        cur = nullptr;
        snprintf(err, errlen, "%s", faults.msg);
        rc = 1;
    } else {
        faults.armed = 1;
        rc = run();
        faults.armed = 0;
    }
    sigaction(SIGSEGV, &faults.old_segv, nullptr);
    sigaction(SIGBUS, &faults.old_bus, nullptr);
    sigaltstack(&faults.old_stack, nullptr);
    return rc;
}

// ---- launch and parameter layout ---------------------------------------------
template <typename... A>
struct Call {
    void (*k)(A...);
    std::tuple<A...> args;
};

template <typename... A, size_t... I>
static void call_kernel(Call<A...>* c, std::index_sequence<I...>) {
    c->k(std::get<I>(c->args)...);
}

template <typename... A>
static void kernel_body(void* p) {
    call_kernel((Call<A...>*)p, std::index_sequence_for<A...>{});
}

template <typename T>
static T read_param(void* p) {
    T v;
    memcpy(&v, p, sizeof(T));  // what cuLaunchKernel copies: sizeof(parameter) bytes
    return v;
}

template <typename... A, size_t... I>
static std::tuple<A...> read_params(void** params, std::index_sequence<I...>) {
    return std::tuple<A...>(read_param<A>(params[I])...);
}

template <typename... A>
static int launch(void (*k)(A...), const unsigned* grid, const unsigned* block, void** params, int nparams,
                  const uintptr_t* guards, int nguards, char* err, int errlen) {
    if (nparams != (int)sizeof...(A)) {
        snprintf(err, errlen, "the kernel takes %d arguments, %d given", (int)sizeof...(A), nparams);
        return 1;
    }
    Call<A...> c{k, read_params<A...>(params, std::index_sequence_for<A...>{})};
    return with_fault_guard(guards, nguards, err, errlen,
                            [&] { return run_grid(grid, block, &kernel_body<A...>, &c, err, errlen); });
}

// kind: 0 pointer, 1 signed integer, 2 unsigned integer, 3 floating point, 4 bool, 5 other
template <typename T>
static constexpr int kind_of() {
    return std::is_pointer<T>::value                                  ? 0
           : std::is_same<T, bool>::value                            ? 4
           : std::is_integral<T>::value && std::is_signed<T>::value  ? 1
           : std::is_integral<T>::value                              ? 2
           : std::is_floating_point<T>::value                        ? 3
                                                                     : 5;
}

template <typename T>
static void describe(int* out) {  // size, kind, pointee size, pointee kind, pointee is const
    typedef typename std::remove_cv<typename std::remove_pointer<T>::type>::type P;
    out[0] = (int)sizeof(T);
    out[1] = kind_of<T>();
    out[2] = std::is_pointer<T>::value ? (int)sizeof(typename std::conditional<std::is_void<P>::value, char, P>::type) : 0;
    out[3] = std::is_pointer<T>::value ? kind_of<P>() : -1;
    out[4] = std::is_pointer<T>::value ? (int)std::is_const<typename std::remove_pointer<T>::type>::value : 0;
}

template <typename... A>
static int params(void (*)(A...), int* out, int max) {
    if ((int)sizeof...(A) > max) return -1;
    int i = 0;
    (void)std::initializer_list<int>{(describe<A>(out + 5 * i++), 0)...};
    return (int)sizeof...(A);
}

}  // namespace emu

// ---- warp and block rendezvous ----------------------------------------------------
static inline void __syncthreads() {
    ::emu::synced = 1;
    ::emu::cur->state = ::emu::AT_BLOCK;
    ::emu::yield_to_scheduler();
}

template <typename T>
static inline T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = 32) {
    static_assert(sizeof(T) <= 8, "the emulator shuffles values of up to 8 bytes");
    using namespace ::emu;
    if (mask != 0xffffffffu || width != 32) {
        blk->error = "__shfl_down_sync: the emulator supports the full mask and width 32 only";
        yield_to_scheduler();
    }
    synced = 1;
    Fiber* f = cur;
    std::vector<uint64_t>& slot = blk->shfl[f->shfl_gen & 1];
    memcpy(&slot[f->linear], &v, sizeof(T));
    f->state = AT_WARP;
    yield_to_scheduler();
    unsigned lane = f->linear & 31, src = lane + delta;
    T r = v;
    if (src < 32) memcpy(&r, &slot[f->linear - lane + src], sizeof(T));
    ++f->shfl_gen;
    return r;
}

extern "C" {
void emu_set_ascending(int a) { ::emu::ascending = a; }
int emu_synced() { return ::emu::synced; }
}
