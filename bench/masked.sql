\set start random(1, 99950)
SELECT id, name, phone, email, iban, city FROM bench_people WHERE id BETWEEN :start AND :start + 49;
