"""A class-heavy discrete-event simulation: a bank with customers, tellers and
an event queue (heapq), properties, inheritance and small methods."""

import heapq
import random


class Event:
    __slots__ = ("time", "seq", "action", "payload")

    def __init__(self, time, seq, action, payload):
        self.time = time
        self.seq = seq
        self.action = action
        self.payload = payload

    def __lt__(self, other):
        return (self.time, self.seq) < (other.time, other.seq)


class Account:
    def __init__(self, owner, balance=0):
        self.owner = owner
        self._balance = balance
        self.history = []

    @property
    def balance(self):
        return self._balance

    def deposit(self, amount):
        self._balance += amount
        self.history.append(amount)

    def withdraw(self, amount):
        if amount > self._balance:
            raise ValueError("insufficient funds")
        self._balance -= amount
        self.history.append(-amount)


class SavingsAccount(Account):
    rate = 0.001

    def add_interest(self):
        self.deposit(self.balance * self.rate)


class Teller:
    def __init__(self, name):
        self.name = name
        self.busy_until = 0.0
        self.served = 0

    def serve(self, now, customer):
        start = max(now, self.busy_until)
        self.busy_until = start + customer.service_time()
        self.served += 1
        return self.busy_until


class Customer:
    def __init__(self, ident, account, rng):
        self.ident = ident
        self.account = account
        self.rng = rng

    def service_time(self):
        return 0.5 + self.rng.random()

    def transaction(self):
        amount = self.rng.randint(1, 200)
        try:
            if self.rng.random() < 0.5:
                self.account.deposit(amount)
            else:
                self.account.withdraw(amount)
        except ValueError:
            return False
        return True


class Bank:
    def __init__(self, tellers, customers, seed):
        self.rng = random.Random(seed)
        self.tellers = [Teller("t%d" % i) for i in range(tellers)]
        self.customers = [Customer(i, SavingsAccount(i, 100) if i % 3 == 0 else Account(i, 100), self.rng)
                          for i in range(customers)]
        self.queue = []
        self.seq = 0
        self.failed = 0

    def schedule(self, time, action, payload=None):
        self.seq += 1
        heapq.heappush(self.queue, Event(time, self.seq, action, payload))

    def free_teller(self):
        return min(self.tellers, key=lambda t: t.busy_until)

    def arrive(self, now, customer):
        done = self.free_teller().serve(now, customer)
        self.schedule(done, self.depart, customer)

    def depart(self, now, customer):
        if not customer.transaction():
            self.failed += 1

    def interest(self, now, _):
        for c in self.customers:
            if isinstance(c.account, SavingsAccount):
                c.account.add_interest()

    def run(self, arrivals):
        t = 0.0
        for i in range(arrivals):
            t += self.rng.expovariate(4.0)
            self.schedule(t, self.arrive, self.customers[i % len(self.customers)])
            if i % 1000 == 0:
                self.schedule(t, self.interest)
        while self.queue:
            event = heapq.heappop(self.queue)
            event.action(event.time, event.payload)
        return sum(c.account.balance for c in self.customers)


def main():
    bank = Bank(tellers=4, customers=500, seed=7)
    total = bank.run(150_000)
    print(round(total, 2), bank.failed, sum(t.served for t in bank.tellers))


if __name__ == "__main__":
    main()
