{{!-- Custom generic test: used as `tests: [is_positive]` under a column.
      It receives model (the relation) and column_name, and returns failing rows. --}}
select *
from {{model}}
where {{column_name}} < 0
