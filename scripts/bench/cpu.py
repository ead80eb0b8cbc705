#!/usr/bin/env python3
"""How much CPU did processes other than ours use during a run? (Other sessions may share the machine.)

  cpu.py snap PID...                        prints "TOTAL OURS": user-mode clock ticks of the whole machine
                                            (/proc/stat) and of PID... and all their descendants
  cpu.py other T0 O0 T1 O1 WRK_USER_S SECS  prints the cores' worth of user-mode CPU that neither our servers
                                            nor wrk used during SECS seconds
  cpu.py server PID...                      prints the user + system CPU seconds PID... and all their
                                            descendants have used so far (the CPU a target's servers spend)
"""
import os
import sys


def machine_user_ticks():
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return int(fields[1]) + int(fields[2])  # user + nice


def our_user_ticks(roots, with_system=False):
    parent, user = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        parent[int(entry)] = int(fields[1])
        user[int(entry)] = int(fields[11]) + (int(fields[12]) if with_system else 0)  # utime (+ stime)
    total = 0
    for pid in user:
        p = pid
        while p > 1:
            if p in roots:
                total += user[pid]
                break
            p = parent.get(p, 0)
    return total


def main():
    if sys.argv[1] == "snap":
        print(machine_user_ticks(), our_user_ticks({int(p) for p in sys.argv[2:]}))
    elif sys.argv[1] == "server":
        ticks = our_user_ticks({int(p) for p in sys.argv[2:]}, with_system=True)
        print(f"{ticks / os.sysconf('SC_CLK_TCK'):.2f}")
    else:
        t0, o0, t1, o1 = map(int, sys.argv[2:6])
        wrk_user, seconds = float(sys.argv[6]), float(sys.argv[7])
        hz = os.sysconf("SC_CLK_TCK")
        print(f"{max(0.0, ((t1 - t0) - (o1 - o0)) / hz - wrk_user) / seconds:.2f}")


if __name__ == "__main__":
    main()
