%% fling_peer - the Erlang/OTP peers of fling's benchmarks.
%%
%%   erl -noshell +P 2000000 -pa DIR -s fling_peer main [name...] -s init stop
%%
%% (or bench/peers/erlang/run.sh [name...], which compiles this module and
%% runs that command). Runs the named benchmarks (all of them when none is
%% named), in the order of benches/0, and prints one line per figure to
%% stdout, the same keys as fling_bench (bench/fling_bench.c):
%%
%%   <benchmark>.<metric> <value> <unit>
%%
%% with the value a plain number (an integer, or one decimal). Diagnostics
%% (elapsed time, counts, errors, logger reports) go to stderr. The VM halts
%% when done, with exit status 0 when every benchmark ran, 1 when one failed,
%% 2 for an unknown benchmark name.
%%
%% Every benchmark runs in a fresh process of its own and kills the processes
%% it spawned before it returns. The clock (erlang:monotonic_time/1, in
%% nanoseconds) starts just before the first message is sent and stops when
%% the process that finishes the work (the one that receives the last
%% message) reads it; that process sends the reading to the benchmark
%% process. Nothing here measures setup or teardown, except actor.spawn,
%% whose subject is the setup itself. The VM runs with its defaults: one
%% scheduler per online core, on-heap message queues.
-module(fling_peer).
-behaviour(gen_server).

-export([main/0, main/1]).
%% The entry point of the idle processes of actor.spawn: spawned by MFA so
%% that they can be found again by their initial call.
-export([idle/0]).
%% gen_server callbacks: the responder of actor.ask and rpc.local_call.
-export([init/1, handle_call/3, handle_cast/2]).

%% ---- sizes (as in bench/fling_bench.c) ------------------------------------

-define(PINGPONG_ROUND_TRIPS, 1_000_000).
-define(COUNTING_MSGS, 10_000_000).
-define(FANIN_SENDERS, 4).
-define(FANIN_MSGS, 10_000_000).
-define(THREADRING_PROCS, 503).
-define(THREADRING_HOPS, 10_000_000).
-define(SPAWN_PROCS, 1_000_000).
-define(ASK_CALLS, 1_000_000).
%% The timeout of every gen_server:call, fling's ASK_TIMEOUT_MS.
-define(ASK_TIMEOUT_MS, 10_000).
%% How long main/1 waits for one benchmark before calling it hung.
-define(HANG_TIMEOUT_MS, 600_000).
%% How long actor.spawn waits for its processes to settle or to die.
-define(SETTLE_TIMEOUT_MS, 60_000).

%% ---- the table ------------------------------------------------------------

%% {Name, Fun, What}: Fun(Name) runs the benchmark and returns its figures,
%% [{Metric, Value, Decimals, Unit}], or raises.
benches() ->
    [{"actor.pingpong", fun pingpong/1,
      "two processes, 1,000,000 ping/pong round trips"},
     {"actor.counting", fun counting/1,
      "one sender, one receiver, 10,000,000 messages"},
     {"actor.fanin", fun fanin/1,
      "4 senders, one receiver, 10,000,000 messages in total"},
     {"actor.threadring", fun threadring/1,
      "503 processes in a ring, a token passed 10,000,000 hops"},
     {"actor.spawn", fun spawn_idle/1,
      "1,000,000 idle processes spawned: rate and bytes per process"},
     {"actor.ask", fun(Name) -> ask(Name, "asks/s") end,
      "1,000,000 sequential gen_server:call (10 s timeout)"},
     {"rpc.local_call", fun(Name) -> ask(Name, "calls/s") end,
      "actor.ask, as the peer of fling's local RPC call"}].

%% ---- main -----------------------------------------------------------------

main() ->
    main([]).

%% Args: benchmark names, atoms from -s or strings from -run.
main(Args) ->
    log_to_stderr(),
    Names = [if is_atom(A) -> atom_to_list(A); true -> A end || A <- Args],
    Status = case select(Names) of
                 {ok, Selected} ->
                     run_all(Selected);
                 {unknown, Name} ->
                     Known = [N || {N, _, _} <- benches()],
                     note("unknown benchmark '~ts'; known: ~ts",
                          [Name, lists:join(" ", Known)]),
                     2
             end,
    erlang:halt(Status).

%% Logger reports (a crashed benchmark, say) go to stderr, not to stdout,
%% which is for figures only.
log_to_stderr() ->
    _ = logger:remove_handler(default),
    ok = logger:add_handler(default, logger_std_h,
                            #{config => #{type => standard_error}}).

select([]) ->
    {ok, benches()};
select(Names) ->
    select(Names, []).

select([], Acc) ->
    {ok, lists:reverse(Acc)};
select([Name | Rest], Acc) ->
    case lists:keyfind(Name, 1, benches()) of
        false -> {unknown, Name};
        Bench -> select(Rest, [Bench | Acc])
    end.

run_all(Benches) ->
    note("OTP ~s, ERTS ~s, ~b scheduler(s) online, ~b online core(s), "
         "process limit ~b",
         [erlang:system_info(otp_release), erlang:system_info(version),
          erlang:system_info(schedulers_online),
          erlang:system_info(logical_processors_online),
          erlang:system_info(process_limit)]),
    Failed = length([B || B <- Benches, run_one(B) =/= ok]),
    if Failed > 0 -> note("~b benchmark(s) failed", [Failed]), 1;
       true -> 0
    end.

%% run_one runs one benchmark in a process of its own, which hands back its
%% figures as its exit reason, and prints them.
run_one({Name, Fun, _What}) ->
    {Pid, Ref} = spawn_monitor(fun() -> exit({figures, Fun(Name)}) end),
    receive
        {'DOWN', Ref, process, Pid, {figures, Figures}} ->
            lists:foreach(fun(F) -> emit(Name, F) end, Figures);
        {'DOWN', Ref, process, Pid, Reason} ->
            note("~s: FAILED (~0p)", [Name, Reason]),
            failed
    after ?HANG_TIMEOUT_MS ->
            exit(Pid, kill),
            note("~s: FAILED (no result after ~b ms)",
                 [Name, ?HANG_TIMEOUT_MS]),
            failed
    end.

%% emit prints one figure, rounded to an integer or to one decimal.
emit(Name, {Metric, Value, 0, Unit}) ->
    io:format("~s.~s ~b ~s~n", [Name, Metric, round(Value), Unit]);
emit(Name, {Metric, Value, 1, Unit}) ->
    io:format("~s.~s ~.1f ~s~n", [Name, Metric, float(Value), Unit]).

%% note writes one diagnostic line to stderr.
note(Fmt, Args) ->
    io:format(standard_error, "fling_peer: " ++ Fmt ++ "~n", Args).

%% ---- helpers --------------------------------------------------------------

now_ns() ->
    erlang:monotonic_time(nanosecond).

%% The process that finishes the work reports the time it did.
finish(Parent) ->
    Parent ! {done, now_ns()}.

await_done() ->
    receive {done, T1} -> T1 end.

secs(T0, T1) ->
    max(T1 - T0, 1) / 1.0e9.

%% kill_all kills a benchmark's helper processes (spawned linked, so that
%% they die with the benchmark should it crash) and waits until they are
%% gone, so that the next benchmark starts on quiet schedulers.
kill_all(Pids) ->
    Refs = [begin
                unlink(P),
                R = monitor(process, P),
                exit(P, kill),
                R
            end || P <- Pids],
    lists:foreach(fun(R) -> receive {'DOWN', R, process, _, _} -> ok end end,
                  Refs).

%% ---- actor.pingpong -------------------------------------------------------

%% Two processes, one ping and one pong per round trip; the ponger answers
%% whoever sent the ping.
pingpong(Name) ->
    Self = self(),
    N = ?PINGPONG_ROUND_TRIPS,
    Ponger = spawn_link(fun ponger/0),
    Pinger = spawn_link(fun() ->
                                receive go -> pinger(Ponger, N, Self) end
                        end),
    T0 = now_ns(),
    Pinger ! go,
    Secs = secs(T0, await_done()),
    kill_all([Pinger, Ponger]),
    note("~s: ~b round trips in ~.3f s", [Name, N, Secs]),
    [{"rate", N / Secs, 0, "round_trips/s"}].

pinger(_Ponger, 0, Parent) ->
    finish(Parent);
pinger(Ponger, N, Parent) ->
    Ponger ! {ping, self(), N},
    receive
        {pong, N} -> pinger(Ponger, N - 1, Parent)
    end.

ponger() ->
    receive
        {ping, From, N} ->
            From ! {pong, N},
            ponger()
    end.

%% ---- actor.counting and actor.fanin ---------------------------------------

counting(Name) ->
    senders(Name, 1, ?COUNTING_MSGS).

fanin(Name) ->
    senders(Name, ?FANIN_SENDERS, ?FANIN_MSGS).

%% senders: NSenders processes send Total messages (split evenly) to one
%% counter as fast as they can; the counter finishes the run when it has
%% seen them all. The scheduler preempts a sender when its reductions are
%% used up, so unlike fling's senders they need not yield by hand.
senders(Name, NSenders, Total) ->
    Self = self(),
    Counter = spawn_link(fun() -> counter(Total, Self) end),
    Shares = [share(Total, NSenders, I) || I <- lists:seq(1, NSenders)],
    Senders = [spawn_link(fun() ->
                                  receive go -> send_n(Counter, Share) end
                          end)
               || Share <- Shares],
    T0 = now_ns(),
    lists:foreach(fun(S) -> S ! go end, Senders),
    Secs = secs(T0, await_done()),
    kill_all([Counter | Senders]),
    note("~s: ~b messages from ~b sender(s) in ~.3f s",
         [Name, Total, NSenders, Secs]),
    [{"rate", Total / Secs, 0, "msgs/s"}].

%% share: sender I's part of Total; the first Total rem NSenders send one more.
share(Total, NSenders, I) when I =< Total rem NSenders ->
    Total div NSenders + 1;
share(Total, NSenders, _I) ->
    Total div NSenders.

send_n(_To, 0) ->
    ok;
send_n(To, N) ->
    To ! {data, N},
    send_n(To, N - 1).

counter(0, Parent) ->
    finish(Parent);
counter(N, Parent) ->
    receive
        {data, _} -> counter(N - 1, Parent)
    end.

%% ---- actor.threadring -----------------------------------------------------

%% ?THREADRING_PROCS processes in a ring pass a token that carries the hops
%% still to go; the process that receives it at 0 finishes the run.
threadring(Name) ->
    Self = self(),
    Nodes = [spawn_link(fun() ->
                                receive
                                    {next, Next} -> ring_node(Next, Self)
                                end
                        end)
             || _ <- lists:seq(1, ?THREADRING_PROCS)],
    [First | Rest] = Nodes,
    lists:foreach(fun({Node, Next}) -> Node ! {next, Next} end,
                  lists:zip(Nodes, Rest ++ [First])),
    T0 = now_ns(),
    First ! {token, ?THREADRING_HOPS},
    Secs = secs(T0, await_done()),
    kill_all(Nodes),
    note("~s: ~b hops around ~b processes in ~.3f s",
         [Name, ?THREADRING_HOPS, ?THREADRING_PROCS, Secs]),
    [{"rate", ?THREADRING_HOPS / Secs, 0, "hops/s"}].

ring_node(Next, Parent) ->
    receive
        {token, 0} ->
            finish(Parent),
            ring_node(Next, Parent);
        {token, Hops} ->
            Next ! {token, Hops - 1},
            ring_node(Next, Parent)
    end.

%% ---- actor.spawn ----------------------------------------------------------

%% ?SPAWN_PROCS idle processes, spawned from one process: the rate of
%% spawn/3, and the memory each one adds. The memory is erlang:memory(total)
%% (all memory the VM has allocated: process structures, heaps, and the rest)
%% after minus before, divided by ?SPAWN_PROCS; the difference in the OS's
%% resident set size (fling's measure) is noted on stderr for comparison.
%% The pids are not kept (a list of a million would add 16 bytes per process
%% to the measure): the processes are found again by their initial call.
spawn_idle(Name) ->
    N = ?SPAWN_PROCS,
    Base = erlang:system_info(process_count),
    Limit = erlang:system_info(process_limit),
    Base + N =< Limit orelse
        error({process_limit_too_low, Limit, "run erl with +P 2000000"}),
    garbage_collect(),
    Mem0 = erlang:memory(total),
    Rss0 = rss_bytes(),
    T0 = now_ns(),
    spawn_n(N),
    T1 = now_ns(),
    %% Let every new process run to its receive before measuring.
    settle(fun() -> erlang:statistics(total_run_queue_lengths_all) =:= 0 end),
    Mem1 = erlang:memory(total),
    Rss1 = rss_bytes(),
    Live = erlang:system_info(process_count) - Base,
    Live =:= N orelse error({processes_live, Live, expected, N}),
    Secs = secs(T0, T1),
    note("~s: ~b processes in ~.3f s; erlang:memory(total) ~b -> ~b bytes, "
         "RSS ~w -> ~w bytes (~s bytes per process)",
         [Name, N, Secs, Mem0, Mem1, Rss0, Rss1, per_proc(Rss0, Rss1, N)]),
    S0 = now_ns(),
    kill_idle(),
    settle(fun() -> erlang:system_info(process_count) =< Base end),
    note("~s: killing them took ~.3f s (not measured)",
         [Name, secs(S0, now_ns())]),
    [{"rate", N / Secs, 0, "actors/s"},
     {"bytes_per_actor", (Mem1 - Mem0) / N, 1, "bytes"}].

spawn_n(0) ->
    ok;
spawn_n(N) ->
    _ = spawn(?MODULE, idle, []),
    spawn_n(N - 1).

%% An idle process: blocked in receive, waiting for a message that never
%% comes.
idle() ->
    receive
        stop -> ok
    end.

kill_idle() ->
    lists:foreach(
      fun(P) ->
              case erlang:process_info(P, initial_call) of
                  {initial_call, {?MODULE, idle, 0}} -> exit(P, kill);
                  _ -> ok
              end
      end, erlang:processes()).

%% settle polls Done every millisecond until it holds.
settle(Done) ->
    settle(Done, now_ns() + ?SETTLE_TIMEOUT_MS * 1_000_000).

settle(Done, Deadline) ->
    case Done() of
        true -> ok;
        false ->
            now_ns() < Deadline orelse error(settle_timeout),
            timer:sleep(1),
            settle(Done, Deadline)
    end.

%% rss_bytes returns the resident set size of the VM, or undefined.
rss_bytes() ->
    case file:read_file("/proc/self/status") of
        {ok, Status} ->
            case re:run(Status, "VmRSS:\\s*(\\d+) kB",
                        [{capture, all_but_first, list}]) of
                {match, [KB]} -> list_to_integer(KB) * 1024;
                nomatch -> undefined
            end;
        {error, _} ->
            undefined
    end.

per_proc(A, B, N) when is_integer(A), is_integer(B) ->
    io_lib:format("~.1f", [(B - A) / N]);
per_proc(_, _, _) ->
    "?".

%% ---- actor.ask and rpc.local_call -----------------------------------------

%% One process calls a gen_server ?ASK_CALLS times, one call at a time, each
%% with fling's ask timeout; the server echoes the number it is sent, and
%% the caller checks it.
ask(Name, Unit) ->
    N = ?ASK_CALLS,
    {ok, Server} = gen_server:start_link(?MODULE, [], []),
    T0 = now_ns(),
    call_n(Server, N),
    Secs = secs(T0, now_ns()),
    ok = gen_server:stop(Server),
    note("~s: ~b gen_server:call (timeout ~b ms) in ~.3f s",
         [Name, N, ?ASK_TIMEOUT_MS, Secs]),
    [{"rate", N / Secs, 0, Unit}].

call_n(_Server, 0) ->
    ok;
call_n(Server, N) ->
    {answer, N} = gen_server:call(Server, {ask, N}, ?ASK_TIMEOUT_MS),
    call_n(Server, N - 1).

init([]) ->
    {ok, no_state}.

handle_call({ask, N}, _From, State) ->
    {reply, {answer, N}, State}.

handle_cast(_Msg, State) ->
    {noreply, State}.
